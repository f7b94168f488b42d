package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/privnum/privnum/qr"
)

// defaultPublicBase is where codes point when neither --base nor
// PRIVNUM_PUBLIC_BASE says otherwise.
const defaultPublicBase = "http://127.0.0.1:8080"

// qrJSON is a code as the qr commands print it.
type qrJSON struct {
	qr.Code
	Short string `json:"short"`
	File  string `json:"file,omitempty"`
}

func (a *app) printCode(c qr.Code, file string, asJSON bool) error {
	if asJSON {
		return a.printJSON(qrJSON{Code: c, Short: qr.ShortCode(c.Token), File: file})
	}
	state := "active"
	if c.Revoked {
		state = "revoked"
	}
	fmt.Fprintf(a.stdout, "qr code %s\n  url      %s\n  short    %s\n  mode     %s\n  owner    %s\n  state    %s\n  created  %s\n",
		c.Token, c.URL, qr.ShortCode(c.Token), c.Mode, c.OwnerMasked, state, c.CreatedAt.Local().Format(time.RFC3339))
	if c.Label != "" {
		fmt.Fprintf(a.stdout, "  label    %s\n", c.Label)
	}
	if file != "" {
		fmt.Fprintf(a.stdout, "  file     %s\n", file)
	}
	return nil
}

func (a *app) qrCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "qr",
		Short: "Mint, print, show and revoke QR codes that reach an owner without showing their number",
		Long: `A QR code stands for an owner (a real number, kept server-side) and a mode.
Its payload is BASE/q/TOKEN, with a random 128-bit token and no phone number.
Scanning a middle-number code gives the scanner a short-lived virtual number
that reaches the owner.`,
	}
	var base string
	cmd.PersistentFlags().StringVar(&base, "base", defaultPublicBase, "public base URL the codes point under (BASE/q/TOKEN); env PRIVNUM_PUBLIC_BASE")
	a.envFlag(cmd.PersistentFlags(), "base", "PRIVNUM_PUBLIC_BASE")
	service := func() (*qr.Service, error) {
		s, err := qr.New(a.rdb, a.parser, a.bindings, qr.Config{PublicBase: base})
		if err != nil {
			return nil, usageError{err}
		}
		return s, nil
	}
	cmd.AddCommand(a.qrMintCmd(service), a.qrLabelsCmd(service), a.qrShowCmd(service), a.qrRevokeCmd(service), a.qrScanCmd(service))
	return cmd
}

func (a *app) qrMintCmd(service func() (*qr.Service, error)) *cobra.Command {
	var req qr.MintRequest
	var mode, out string
	var size int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "mint --owner NUM [-o code.png|code.svg]",
		Short: "Mint a QR code for an owner; write it as PNG or SVG with -o",
		Args:  exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			m, err := qr.ParseMode(mode)
			if err != nil {
				return usageError{err}
			}
			req.Mode = m
			render, err := renderer(out, size)
			if err != nil {
				return usageError{err}
			}
			s, err := service()
			if err != nil {
				return err
			}
			var f *outFile
			if out != "" {
				if f, err = createOut(out); err != nil {
					return err
				}
				defer f.abort()
			}
			c, err := s.Mint(cmd.Context(), req)
			if err != nil {
				return err
			}
			if f != nil {
				err := render(f, c.URL)
				if err == nil {
					err = f.commit()
				}
				if err != nil {
					return a.unmint(s, []qr.Code{c}, err)
				}
			}
			return a.printCode(c, out, asJSON)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.Owner, "owner", "", "the owner's real number (required; never in the code)")
	f.StringVar(&req.Label, "label", "", "a label for the operator and printed labels")
	f.StringVar(&mode, "mode", string(qr.MiddleNumber), "middle-number or callback")
	f.StringVarP(&out, "output", "o", "", "write the code to this file: PNG, or SVG when it ends in .svg")
	f.IntVar(&size, "size", 512, "PNG width and height in pixels")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("owner")
	return cmd
}

// renderer returns how to write a code to path, chosen by its extension.
func renderer(path string, size int) (func(w io.Writer, content string) error, error) {
	if path == "" {
		return nil, nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		if size <= 0 || size > qr.MaxPNGSize {
			return nil, fmt.Errorf("--size %d: want 1 to %d pixels", size, qr.MaxPNGSize)
		}
		return func(w io.Writer, content string) error {
			b, err := qr.PNG(content, size)
			if err == nil {
				_, err = w.Write(b)
			}
			return err
		}, nil
	case ".svg":
		return func(w io.Writer, content string) error {
			b, err := qr.SVG(content)
			if err == nil {
				_, err = w.Write(b)
			}
			return err
		}, nil
	}
	return nil, fmt.Errorf("-o %s: want a .png or .svg file", path)
}

// unmint revokes codes minted by a command that then failed, so that no
// code outlives the file it was meant for, and returns cause.
func (a *app) unmint(s *qr.Service, codes []qr.Code, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, c := range codes {
		if err := s.Revoke(ctx, c.Token); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w (and revoking the %d code(s) minted for it failed: %w)", cause, len(codes), errors.Join(errs...))
	}
	return fmt.Errorf("%w (the %d code(s) minted for it were revoked)", cause, len(codes))
}

func (a *app) qrLabelsCmd(service func() (*qr.Service, error)) *cobra.Command {
	var csvPath, out, mode, fontPath string
	var quiet, asJSON bool
	cmd := &cobra.Command{
		Use:   "labels --csv rows.csv -o labels.pdf [--font FILE.ttf]",
		Short: "Mint one code per CSV row and print them on A4 label sheets",
		Long: fmt.Sprintf(`Mint one code per CSV row and lay out one label per row on A4 pages.

The CSV has per row an owner number, a label text and optionally a mode:
"owner,label[,mode]". A first row with a cell "owner" is a header naming the
columns (owner, label, mode in any order). Blank lines and lines starting
with # are skipped; rows without a mode take --mode. Latin text
(Windows-1252) is printed in Helvetica; any other script (Chinese, ...)
with --font, a TrueType font (.ttf, or the first face of a .ttc), or else
the first system font that has every glyph (fonts-wqy-zenhei,
fonts-wqy-microhei, fonts-arphic-uming, fonts-droid-fallback, DejaVu Sans,
then any under /usr/share/fonts). OpenType CFF fonts (fonts-noto-cjk) cannot
be embedded. Every row is checked, and the font chosen, before anything is
minted: a bad row is refused with its line number, a label no font can
print with the characters it lacks, and nothing is stored.

Sheet: A4 portrait, %d columns × %d rows of %.0f × %.0f mm labels (%d per page), edge
to edge across, 0.5 mm margin top and bottom — the common 3×8 70×37 mm
sheet. Each label: the QR symbol in a 33 mm square on the left, the label
text (wrapped, up to 5 lines) and the short code (first 8 token characters,
e.g. ABCD-EFGH) on the right.`, qr.LabelColumns, qr.LabelRows, qr.LabelWidth, qr.LabelHeight, qr.LabelsPerPage),
		Args: exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			def, err := qr.ParseMode(mode)
			if err != nil {
				return usageError{err}
			}
			s, err := service()
			if err != nil {
				return err
			}
			in, err := os.Open(csvPath)
			if err != nil {
				return usageError{err}
			}
			reqs, err := s.ReadCSV(bufio.NewReader(in))
			in.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", csvPath, err)
			}
			texts := make([]string, len(reqs))
			for i := range reqs {
				if reqs[i].Mode == "" {
					reqs[i].Mode = def
				}
				texts[i] = reqs[i].Label
			}
			font, err := qr.FindFont(texts, fontPath)
			if err != nil {
				return err
			}
			f, err := createOut(out)
			if err != nil {
				return err
			}
			defer f.abort()
			codes, err := s.MintAll(cmd.Context(), reqs, a.progress("minting", len(reqs), quiet))
			if err != nil {
				return err
			}
			labels := make([]qr.Label, len(codes))
			for i, c := range codes {
				labels[i] = qr.Label{Code: c}
			}
			w := bufio.NewWriter(f)
			err = qr.Sheet{Font: font}.Write(w, labels, a.progress("printing", len(labels), quiet))
			if err == nil {
				err = w.Flush()
			}
			if err == nil {
				err = f.commit()
			}
			if err != nil {
				return a.unmint(s, codes, err)
			}
			pages := (len(labels) + qr.LabelsPerPage - 1) / qr.LabelsPerPage
			if asJSON {
				list := make([]qrJSON, len(codes))
				for i, c := range codes {
					list[i] = qrJSON{Code: c, Short: qr.ShortCode(c.Token)}
				}
				return a.printJSON(map[string]any{"file": out, "pages": pages, "codes": list})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SHORT\tTOKEN\tMODE\tOWNER\tLABEL")
			for _, c := range codes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", qr.ShortCode(c.Token), c.Token, c.Mode, c.OwnerMasked, c.Label)
			}
			tw.Flush()
			fmt.Fprintf(a.stdout, "minted %d code(s); wrote %d page(s) to %s\n", len(codes), pages, out)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&csvPath, "csv", "", "CSV of owner,label[,mode] rows (required)")
	f.StringVar(&fontPath, "font", "", "TrueType font (.ttf/.ttc) for the label text; default: Helvetica for Latin text, else the first system font with every glyph")
	f.StringVarP(&out, "output", "o", "", "the PDF to write (required)")
	f.StringVar(&mode, "mode", string(qr.MiddleNumber), "mode for rows that give none: middle-number or callback")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("csv")
	cmd.MarkFlagRequired("output")
	return cmd
}

func (a *app) qrShowCmd(service func() (*qr.Service, error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show TOKEN",
		Short: "Show a code, its mode, masked owner and state",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			s, err := service()
			if err != nil {
				return err
			}
			c, err := s.Get(cmd.Context(), args[0])
			if err != nil && !errors.Is(err, qr.ErrRevoked) {
				return err
			}
			return a.printCode(c, "", asJSON)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) qrRevokeCmd(service func() (*qr.Service, error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke TOKEN",
		Short: "Revoke a code for good and end the bindings its scans made",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			s, err := service()
			if err != nil {
				return err
			}
			if err := s.Revoke(cmd.Context(), args[0]); err != nil {
				return err
			}
			c, err := s.Get(cmd.Context(), args[0])
			if err != nil && !errors.Is(err, qr.ErrRevoked) {
				return err
			}
			if asJSON {
				return a.printCode(c, "", true)
			}
			fmt.Fprintf(a.stdout, "revoked %s\n", c.Token)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) qrScanCmd(service func() (*qr.Service, error)) *cobra.Command {
	var scanner string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "scan TOKEN --scanner NUM",
		Short: "Scan a code as the number --scanner would (for testing): print the virtual number to call",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			s, err := service()
			if err != nil {
				return err
			}
			r, err := s.Scan(cmd.Context(), args[0], scanner)
			if err != nil {
				return err
			}
			if asJSON {
				return a.printJSON(r)
			}
			fmt.Fprintf(a.stdout, "call %s until %s (binding %s)\n", r.VirtualNumber, r.ExpiresAt.Local().Format(time.RFC3339), r.BindingID)
			return nil
		}),
	}
	cmd.Flags().StringVar(&scanner, "scanner", "", "the scanner's number (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("scanner")
	return cmd
}

// outFile is an output written to a temporary file beside its path and
// renamed into place by commit, so a failed command leaves no partial file.
type outFile struct {
	*os.File
	path string
	done bool
}

func createOut(path string) (*outFile, error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", path, err)
	}
	return &outFile{File: f, path: path}, nil
}

func (o *outFile) commit() error {
	if err := o.Chmod(0o644); err != nil {
		return err
	}
	if err := o.Close(); err != nil {
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	if err := os.Rename(o.Name(), o.path); err != nil {
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	o.done = true
	return nil
}

// abort removes the temporary file unless commit succeeded.
func (o *outFile) abort() {
	if !o.done {
		o.Close()
		os.Remove(o.Name())
	}
}

// progress returns a progress callback drawing a bar on stderr, or nil when
// quiet, when stderr is not a terminal, or for a batch too small to matter.
func (a *app) progress(label string, total int, quiet bool) func(done, total int) {
	f, ok := a.stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) || total < 50 {
		return nil
	}
	return progressBar(a.stderr, label, 100*time.Millisecond)
}

// progressBar returns a callback that redraws "label [####    ] done/total"
// in place on w, at most once per every, always for the last step, and ends
// the line when done reaches total.
func progressBar(w io.Writer, label string, every time.Duration) func(done, total int) {
	const width = 30
	var last time.Time
	return func(done, total int) {
		if total <= 0 {
			return
		}
		now := time.Now()
		if done < total && now.Sub(last) < every {
			return
		}
		last = now
		n := min(width, done*width/total)
		fmt.Fprintf(w, "\r%-8s [%s%s] %d/%d", label, strings.Repeat("#", n), strings.Repeat(" ", width-n), done, total)
		if done >= total {
			fmt.Fprintln(w)
		}
	}
}
