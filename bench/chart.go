package main

import (
	"fmt"
	"os"
	"strings"
)

// writeChart draws submitted and completed requests over time as an SVG.
func writeChart(path string, r Results) error {
	const w, h, left, bottom, top, right = 900.0, 480.0, 70.0, 50.0, 50.0, 30.0
	maxT, maxN := 1.0, float64(max(r.Requests, 1))
	for _, p := range r.Timeline {
		maxT = max(maxT, p.Seconds)
	}
	x := func(s float64) float64 { return left + (w-left-right)*s/maxT }
	y := func(n float64) float64 { return h - bottom - (h-bottom-top)*n/maxN }
	line := func(get func(Point) int) string {
		var pts []string
		for _, p := range r.Timeline {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.Seconds), y(float64(get(p)))))
		}
		return strings.Join(pts, " ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`)
	fmt.Fprintf(&b, `<text x="%.0f" y="28" font-size="16">dsrflow: %d skip-wait erasures, %s — %.0f/s intake, all completed in %.0f s</text>`,
		left, r.Requests, r.When.Format("2006-01-02"), r.IntakePerSecond, r.CompletedSeconds)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, left, top, left, h-bottom)
	for i := 0; i <= 5; i++ {
		t, n := maxT*float64(i)/5, maxN*float64(i)/5
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%.0f s</text>`, x(t), h-bottom+18, t)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%.0f</text>`, left-6, y(n)+4, n)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`, left, y(n), w-right, y(n))
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#3366cc" stroke-width="2" points="%s"/>`, line(func(p Point) int { return p.Submitted }))
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#109618" stroke-width="2" points="%s"/>`, line(func(p Point) int { return p.Completed }))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#3366cc">submitted (201)</text>`, w-right-220, top+20)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#109618">completed (Mixpanel task SUCCESS)</text>`, w-right-220, top+38)
	b.WriteString(`</svg>`)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
