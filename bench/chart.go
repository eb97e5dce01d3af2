package main

import (
	"fmt"
	"os"
	"strings"
)

// colors of the stacks' lines, in BENCH_STACKS order.
var colors = []string{"#109618", "#3366cc", "#dc3912", "#ff9900"}

// writeChart draws each stack's submitted (dashed) and completed requests
// over time as an SVG.
func writeChart(path string, run Run) error {
	const w, h, left, bottom, top, right = 900.0, 480.0, 70.0, 50.0, 50.0, 30.0
	maxT, maxN := 1.0, float64(max(run.Requests, 1))
	for _, r := range run.Stacks {
		for _, p := range r.Timeline {
			maxT = max(maxT, p.Seconds)
		}
	}
	x := func(s float64) float64 { return left + (w-left-right)*s/maxT }
	y := func(n float64) float64 { return h - bottom - (h-bottom-top)*n/maxN }
	line := func(r Results, get func(Point) int) string {
		var pts []string
		for _, p := range r.Timeline {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.Seconds), y(float64(get(p)))))
		}
		return strings.Join(pts, " ")
	}
	kind := "skip-wait erasures"
	if run.WaitingPeriod != "" {
		kind = "erasures with a " + run.WaitingPeriod + " waiting period"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`)
	fmt.Fprintf(&b, `<text x="%.0f" y="28" font-size="16">dsrflow: %d %s, %s</text>`, left, run.Requests, kind, run.When.Format("2006-01-02"))
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, left, top, left, h-bottom)
	for i := 0; i <= 5; i++ {
		t, n := maxT*float64(i)/5, maxN*float64(i)/5
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%.0f s</text>`, x(t), h-bottom+18, t)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%.0f</text>`, left-6, y(n)+4, n)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`, left, y(n), w-right, y(n))
	}
	for i, r := range run.Stacks {
		c := colors[i%len(colors)]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1" stroke-dasharray="4 3" points="%s"/>`, c, line(r, func(p Point) int { return p.Submitted }))
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, c, line(r, func(p Point) int { return p.Completed }))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%s (%d workers): %.0f/s intake, all done in %.0f s</text>`,
			w-right-330, top+20+18*float64(i), c, r.Stack, r.Workers, r.IntakePerSecond, r.CompletedSeconds)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#555">dashed: submitted (201); solid: completed (Mixpanel task SUCCESS)</text>`,
		left+10, h-bottom-10)
	b.WriteString(`</svg>`)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
