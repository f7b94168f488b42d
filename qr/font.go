package qr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/encoding/charmap"
)

// Font is a TrueType font that label sheets print their text with, for
// text beyond the core fonts' Windows-1252: Chinese, Cyrillic, anything the
// font has glyphs for.
type Font struct {
	// Path is the file the font was read from.
	Path string
	// ttf is one standalone TrueType font (a collection's first face).
	ttf   []byte
	cmap  map[rune]bool
	faces int
}

// SystemFonts lists the font files FindFont tries first, in order: CJK
// TrueType fonts of common Debian/Ubuntu packages (fonts-wqy-zenhei,
// fonts-wqy-microhei, fonts-arphic-uming, fonts-droid-fallback), then
// DejaVu Sans (Latin, Greek, Cyrillic).
func SystemFonts() []string {
	return []string{
		"/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
		"/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
		"/usr/share/fonts/truetype/arphic/uming.ttc",
		"/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
		"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
	}
}

// FontDirs are the directories FindFont searches (every .ttf and .ttc)
// after SystemFonts.
func FontDirs() []string { return []string{"/usr/share/fonts", "/usr/local/share/fonts"} }

// FontSearch says where FindFont looks for fonts.
type FontSearch struct {
	// Files are tried first, in order.
	Files []string
	// Dirs are searched next, for .ttf and .ttc files.
	Dirs []string
}

// FontHint is what to do when no font has the glyphs a label needs.
const FontHint = "install fonts-wqy-zenhei or pass --font"

// GlyphError reports label text that the chosen font (or every font
// found) cannot print.
type GlyphError struct {
	// Text is the label text.
	Text string
	// Missing are the characters without a glyph, each once, in order.
	Missing []rune
	// Font is the font that lacks them; empty when no font has them.
	Font string
}

func (e *GlyphError) Error() string {
	if e.Font != "" {
		return fmt.Sprintf("label text %q: font %s has no glyphs for %s", e.Text, e.Font, string(e.Missing))
	}
	return fmt.Sprintf("label text %q: no font has glyphs for %s (%s)", e.Text, string(e.Missing), FontHint)
}

// Is makes a GlyphError an ErrInvalid.
func (e *GlyphError) Is(target error) bool { return target == ErrInvalid }

// LoadFont reads a TrueType font (.ttf) or the first face of a TrueType
// collection (.ttc). OpenType fonts with CFF outlines (.otf, and the .ttc
// of fonts-noto-cjk) cannot be embedded and are refused.
func LoadFont(path string) (*Font, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("font: %w", err)
	}
	f, err := parseFont(b)
	if err != nil {
		return nil, fmt.Errorf("font %s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

func parseFont(b []byte) (*Font, error) {
	if len(b) < 12 {
		return nil, errors.New("not a TrueType font")
	}
	f := &Font{faces: 1}
	switch string(b[:4]) {
	case "ttcf":
		n := int(binary.BigEndian.Uint32(b[8:]))
		if n < 1 || len(b) < 16 {
			return nil, errors.New("empty font collection")
		}
		ttf, err := extractFace(b, int(binary.BigEndian.Uint32(b[12:])))
		if err != nil {
			return nil, err
		}
		f.ttf, f.faces = ttf, n
	case "\x00\x01\x00\x00", "true":
		f.ttf = b
	case "OTTO":
		return nil, errors.New("OpenType with CFF outlines: not supported, use a TrueType (glyf) font such as fonts-wqy-zenhei")
	default:
		return nil, errors.New("not a TrueType font")
	}
	cmap, err := table(f.ttf, "cmap")
	if err != nil {
		return nil, err
	}
	if _, err := table(f.ttf, "glyf"); err != nil {
		return nil, errors.New("no glyf table: not supported, use a TrueType (glyf) font such as fonts-wqy-zenhei")
	}
	if f.cmap, err = parseCmap(cmap); err != nil {
		return nil, err
	}
	return f, nil
}

// extractFace copies the face whose table directory starts at off out of
// a collection into a standalone font file, rewriting the table offsets.
func extractFace(b []byte, off int) ([]byte, error) {
	if off < 0 || off+12 > len(b) {
		return nil, errors.New("font collection: bad face offset")
	}
	n := int(binary.BigEndian.Uint16(b[off+4:]))
	dir := off + 12
	if dir+16*n > len(b) {
		return nil, errors.New("font collection: truncated table directory")
	}
	head := 12 + 16*n
	out := make([]byte, head, head+len(b)/4)
	copy(out, b[off:off+head])
	for i := range n {
		rec := dir + 16*i
		toff, tlen := int(binary.BigEndian.Uint32(b[rec+8:])), int(binary.BigEndian.Uint32(b[rec+12:]))
		if toff < 0 || tlen < 0 || toff+tlen > len(b) {
			return nil, errors.New("font collection: table out of range")
		}
		binary.BigEndian.PutUint32(out[12+16*i+8:], uint32(len(out)))
		out = append(out, b[toff:toff+tlen]...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	return out, nil
}

// table returns the data of a standalone font's table tag.
func table(ttf []byte, tag string) ([]byte, error) {
	n := int(binary.BigEndian.Uint16(ttf[4:]))
	for i := range n {
		rec := 12 + 16*i
		if rec+16 > len(ttf) {
			break
		}
		if string(ttf[rec:rec+4]) != tag {
			continue
		}
		off, l := int(binary.BigEndian.Uint32(ttf[rec+8:])), int(binary.BigEndian.Uint32(ttf[rec+12:]))
		if off < 0 || l < 0 || off+l > len(ttf) {
			return nil, fmt.Errorf("table %s out of range", tag)
		}
		return ttf[off : off+l], nil
	}
	return nil, fmt.Errorf("no %s table", tag)
}

// parseCmap returns the characters a cmap table maps to a glyph, from its
// Unicode subtable (format 12 preferred, else format 4).
func parseCmap(t []byte) (map[rune]bool, error) {
	if len(t) < 4 {
		return nil, errors.New("cmap too short")
	}
	u16 := func(b []byte, i int) int { return int(binary.BigEndian.Uint16(b[i:])) }
	u32 := func(b []byte, i int) int { return int(binary.BigEndian.Uint32(b[i:])) }
	var f4, f12 []byte
	for i := range u16(t, 2) {
		rec := 4 + 8*i
		if rec+8 > len(t) {
			break
		}
		plat, enc, off := u16(t, rec), u16(t, rec+2), u32(t, rec+4)
		if off+4 > len(t) || !(plat == 0 || (plat == 3 && (enc == 1 || enc == 10))) {
			continue
		}
		switch u16(t, off) {
		case 4:
			f4 = t[off:]
		case 12:
			f12 = t[off:]
		}
	}
	has := map[rune]bool{}
	switch {
	case f12 != nil && len(f12) >= 16:
		n := u32(f12, 12)
		for i := range n {
			g := 16 + 12*i
			if g+12 > len(f12) {
				break
			}
			start, end, glyph := u32(f12, g), u32(f12, g+4), u32(f12, g+8)
			for r := start; r <= end && r <= unicode.MaxRune; r++ {
				if glyph+(r-start) != 0 {
					has[rune(r)] = true
				}
			}
		}
	case f4 != nil && len(f4) >= 14:
		seg := u16(f4, 6) / 2
		ends, starts, deltas, ranges := 14, 16+2*seg, 16+4*seg, 16+6*seg
		if ranges+2*seg > len(f4) {
			return nil, errors.New("cmap format 4 truncated")
		}
		for i := range seg {
			start, end := u16(f4, starts+2*i), u16(f4, ends+2*i)
			delta, ro := u16(f4, deltas+2*i), u16(f4, ranges+2*i)
			for c := start; c <= end && c != 0xffff; c++ {
				g := 0
				if ro == 0 {
					g = (c + delta) & 0xffff
				} else if gi := ranges + 2*i + ro + 2*(c-start); gi+2 <= len(f4) {
					if g = u16(f4, gi); g != 0 {
						g = (g + delta) & 0xffff
					}
				}
				if g != 0 {
					has[rune(c)] = true
				}
			}
		}
	default:
		return nil, errors.New("no Unicode cmap")
	}
	return has, nil
}

// Missing returns the characters of text the font has no glyph for, each
// once, in order; spaces need none.
func (f *Font) Missing(text string) []rune {
	var out []rune
	for _, r := range text {
		if !unicode.IsSpace(r) && !f.cmap[r] && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// coreFontText reports whether the PDF core fonts can print text
// (Windows-1252).
func coreFontText(text string) bool {
	_, err := charmap.Windows1252.NewEncoder().String(text)
	return err == nil
}

// FindFont chooses the font to print texts with, searching SystemFonts
// and FontDirs (see FontSearch.Find).
func FindFont(texts []string, path string) (*Font, error) {
	return FontSearch{Files: SystemFonts(), Dirs: FontDirs()}.Find(texts, path)
}

// Find chooses the font to print texts with. With path set, it is that
// font, which must have every glyph (a *GlyphError naming the missing ones
// otherwise). Without, texts the core fonts can print (Windows-1252) need
// none (nil); for others it is the first of s.Files, then of the fonts
// under s.Dirs, that has a glyph for every character. When none has, the
// error is a *GlyphError naming the first text that cannot be printed and
// its characters that no font has.
func (s FontSearch) Find(texts []string, path string) (*Font, error) {
	if path != "" {
		f, err := LoadFont(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		for _, t := range texts {
			if m := f.Missing(t); len(m) > 0 {
				return nil, &GlyphError{Text: t, Missing: m, Font: path}
			}
		}
		return f, nil
	}
	var need []string
	for _, t := range texts {
		if !coreFontText(t) {
			need = append(need, t)
		}
	}
	if len(need) == 0 {
		return nil, nil
	}
	all := strings.Join(need, "")
	// some holds the characters of all that some font tried has.
	some := map[rune]bool{}
	try := func(p string) *Font {
		f, err := LoadFont(p)
		if err != nil {
			return nil
		}
		if len(f.Missing(all)) == 0 {
			return f
		}
		for _, r := range all {
			some[r] = some[r] || f.cmap[r]
		}
		return nil
	}
	for _, p := range s.Files {
		if f := try(p); f != nil {
			return f, nil
		}
	}
	for _, dir := range s.Dirs {
		var found *Font
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || slices.Contains(s.Files, p) {
				return nil
			}
			if ext := strings.ToLower(filepath.Ext(p)); ext != ".ttf" && ext != ".ttc" {
				return nil
			}
			if found = try(p); found != nil {
				return filepath.SkipAll
			}
			return nil
		})
		if found != nil {
			return found, nil
		}
	}
	for _, t := range need {
		e := &GlyphError{Text: t}
		for _, r := range t {
			if !unicode.IsSpace(r) && !some[r] && !slices.Contains(e.Missing, r) {
				e.Missing = append(e.Missing, r)
			}
		}
		if len(e.Missing) > 0 {
			return nil, e
		}
	}
	// Every character is in some font, but no one font has them all.
	return nil, fmt.Errorf("%w: no one font has glyphs for every label (%s)", ErrInvalid, FontHint)
}
