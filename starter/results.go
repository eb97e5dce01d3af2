package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

func (c *cli) resultsCommand() *cobra.Command {
	var controller, out string
	cmd := &cobra.Command{
		Use:   "results ID [-o FILE]",
		Short: "Download an access or portability request's results bundle and verify it",
		Long: `Download the results bundle of an access or portability request (a zip of
JSON Lines files) to FILE (default dsr-ID.zip), and verify it: the zip opens and
its records add up to the request's results_count. Nothing is kept unless it
verifies. Works on the database (DSR_RESULTS_DIR) or, with DSR_API_URL, through the API.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, key, resp, err := c.lookup(cmd.Context(), controller, args[0])
			if err != nil {
				return err
			}
			if resp.ResultsURL == "" {
				return fmt.Errorf("request %s has no results (status %s): only completed access and portability requests do", key.RequestID, resp.RequestStatus)
			}
			if out == "" {
				out = "dsr-" + key.RequestID + ".zip"
			}
			bundle, err := b.Results(cmd.Context(), key, resp.ResultsURL)
			if err != nil {
				return err
			}
			defer bundle.Close()
			files, records, err := saveVerified(bundle, out, resp.ResultsCount)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "saved %s: %d files, %d records (results_count %d: verified)\n", out, files, records, resp.ResultsCount)
			return nil
		},
	}
	c.controllerFlag(cmd, &controller)
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default dsr-ID.zip)")
	return cmd
}

// saveVerified writes the bundle to path (mode 0600, through a temporary file
// in the same directory) once it opens as a zip and its JSON Lines hold
// exactly want records.
func saveVerified(bundle io.Reader, path string, want int) (files, records int, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dsr-results-*")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	defer tmp.Close()
	size, err := io.Copy(tmp, bundle)
	if err != nil {
		return 0, 0, fmt.Errorf("downloading the results: %w", err)
	}
	files, records, err = countRecords(tmp, size)
	if err != nil {
		return 0, 0, err
	}
	if records != want {
		return files, records, fmt.Errorf("the bundle holds %d records, the request says results_count %d: not saved", records, want)
	}
	if err := tmp.Close(); err != nil {
		return 0, 0, err
	}
	return files, records, os.Rename(tmp.Name(), path)
}

// countRecords opens a results zip and counts its JSON Lines files and their
// non-blank lines.
func countRecords(r io.ReaderAt, size int64) (files, records int, err error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return 0, 0, fmt.Errorf("the results are not a readable zip: %w", err)
	}
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".jsonl") {
			continue
		}
		files++
		rc, err := f.Open()
		if err != nil {
			return 0, 0, fmt.Errorf("entry %d of the results: %w", files, err)
		}
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) > 0 {
				records++
			}
		}
		err = errors.Join(sc.Err(), rc.Close())
		if err != nil {
			return 0, 0, fmt.Errorf("entry %d of the results: %w", files, err)
		}
	}
	return files, records, nil
}
