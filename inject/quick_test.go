package inject

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/net/html"
)

// FuzzQuickInsertionPoint: whenever the quick scan is sure, the tokenizer
// finds the same offset.
func FuzzQuickInsertionPoint(f *testing.F) {
	files, _ := filepath.Glob("../testdata/html/*.html")
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(b)
	}
	for _, s := range []string{
		"<!DOCTYPE html><html><head><title>x</title>", "<!-- c --><html lang=en><head>", "<!--><head>", "<!---><head>",
		"<!-- a --!> b --><head>", "<HTML><HEAD >", "<html a='>'><head>", "<html><body>", "<html><meta charset=utf-8>",
		"\n\t <!doctype html>\n<html>\n<head data-x=1>", "<html/><head/>", "<htmlx><head>", "<html><head", "<!doctype html", "<?xml?><head>",
		"<html><h1>", `<html lang="en" data-theme='dark'><head>`, `<html lang="e>n"><head>`, `<html a="x"b=c><head>`,
		"<html a=b/><head a=b/>", "<html / lang=en><head>", "<head\x00>", "<html =a><head>", `<html a= "b" ><head  >`,
		`<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd"><html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en"><head>`, "<html a<b><head>", "<!-x><head>", "<!--a-->--><head>", "<!----><head>", "<!-- --- --><head>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		at, sure := quickInsertionPoint(b)
		if !sure {
			return
		}
		if want := insertionPoint(html.NewTokenizer(bytes.NewReader(b)), nil); at != want {
			t.Fatalf("quick %d, tokenizer %d for %q", at, want, b)
		}
	})
}

func TestQuickInsertionPointCommonPages(t *testing.T) {
	for _, s := range []string{
		"<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=\"utf-8\">",
		"<!doctype html><html><head><title>t</title></head>",
		"<!DOCTYPE html>\n<!-- rendered by the app -->\n<html lang=en data-theme=dark>\n<head>\n",
		"<html><body>",
		`<!DOCTYPE html><html lang="en" data-theme="dark" class="h-full"><head><meta charset="utf-8">`,
		"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n",
	} {
		if _, sure := quickInsertionPoint([]byte(s)); !sure {
			t.Errorf("not sure about %q", s)
		}
	}
}
