package htmlreport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Chromium finds a headless-capable Chromium: $CHROMIUM, then chromium,
// chromium-browser, google-chrome on $PATH (Debian's package installs
// /usr/bin/chromium; `make chromium` installs it).
func Chromium() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium found (install Debian's chromium package: `make chromium`, or set CHROMIUM)")
}

// chromiumArgs are the flags of an isolated, offline headless run: no
// sandbox (root in containers), no GPU, nothing fetched in the background,
// a throw-away profile.
func chromiumArgs(profile string, extra ...string) []string {
	return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
		"--hide-scrollbars", "--user-data-dir=" + profile}, extra...)
}

func runChromium(ctx context.Context, args ...string) ([]byte, error) {
	out, _, err := runChromiumLogs(ctx, args...)
	return out, err
}

// runChromiumLogs runs Chromium and returns its standard output and log.
func runChromiumLogs(ctx context.Context, args ...string) ([]byte, []byte, error) {
	bin, err := Chromium()
	if err != nil {
		return nil, nil, err
	}
	profile, err := os.MkdirTemp("", "driftlab-chromium-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, chromiumArgs(profile, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, stderr.Bytes(), fmt.Errorf("%s: %w: %s", bin, err, lastLines(stderr.Bytes(), 5))
	}
	return stdout.Bytes(), stderr.Bytes(), nil
}

func lastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte(" | ")))
}

func fileURL(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return "file://" + filepath.ToSlash(abs), nil
}

// Screenshot renders a page in headless Chromium into a PNG width pixels
// wide and height pixels tall; height 0 estimates the page's height from its
// table rows (headless Chromium has no full-page screenshot flag).
func Screenshot(ctx context.Context, page, png string, width, height int) error {
	u, err := fileURL(page)
	if err != nil {
		return err
	}
	if height <= 0 {
		html, err := os.ReadFile(page)
		if err != nil {
			return err
		}
		height = estimateHeight(string(html))
	}
	abs, err := filepath.Abs(png)
	if err != nil {
		return err
	}
	_, err = runChromium(ctx, fmt.Sprintf("--window-size=%d,%d", width, height), "--screenshot="+abs, u)
	if err != nil {
		return err
	}
	if st, err := os.Stat(abs); err != nil || st.Size() == 0 {
		return fmt.Errorf("chromium wrote no screenshot to %s", abs)
	}
	return nil
}

// PageCheck is what headless Chromium saw of a page.
type PageCheck struct {
	// DOM is the page's DOM after its scripts ran.
	DOM string
	// SVGs is the number of <svg> elements in the DOM.
	SVGs int
	// PlotsRendered is how many plots the page's self-check found laid out
	// with a size and drawn paths (data-plots-rendered).
	PlotsRendered int
	// Console holds the page's console messages and errors (uncaught
	// exceptions, resources that failed to load), from Chromium's log.
	Console []string
}

var (
	svgTag        = regexp.MustCompile(`<svg[\s>]`)
	plotsRendered = regexp.MustCompile(`data-plots-rendered="(\d+)"`)
)

// Check loads a page in headless Chromium (offline: file URL, background
// networking off) and reports what rendered.
func Check(ctx context.Context, page string) (*PageCheck, error) {
	u, err := fileURL(page)
	if err != nil {
		return nil, err
	}
	out, logs, err := runChromiumLogs(ctx, "--window-size=1280,2000", "--enable-logging=stderr", "--v=0", "--dump-dom", u)
	if err != nil {
		return nil, err
	}
	pc := &PageCheck{DOM: string(out), SVGs: len(svgTag.FindAllString(string(out), -1))}
	for _, l := range strings.Split(string(logs), "\n") {
		if strings.Contains(l, ":CONSOLE") || strings.Contains(l, "Uncaught") {
			pc.Console = append(pc.Console, strings.TrimSpace(l))
		}
	}
	if m := plotsRendered.FindStringSubmatch(pc.DOM); m != nil {
		pc.PlotsRendered, _ = strconv.Atoi(m[1])
	}
	return pc, nil
}

// estimateHeight guesses a report's height in CSS pixels at 1280 wide: the
// header, cards and plots, plus each visible table row and line break
// (rows inside the collapsed <details> do not count).
func estimateHeight(html string) int {
	if i := strings.Index(html, "<details"); i >= 0 {
		if j := strings.Index(html[i:], "</details>"); j >= 0 {
			html = html[:i] + html[i+j:]
		}
	}
	h := 2200 + 35*strings.Count(html, "<tr>") + 17*strings.Count(html, "<br>")
	return min(max(h, 1600), 16000)
}
