#!/bin/sh
# Runs each fuzz target for SECONDS (default 600) with libFuzzer through cargo-fuzz
# (needs the nightly toolchain and `cargo install cargo-fuzz`), seeded from the test
# fixtures and from PDFs the demo typesets. Crashes and hangs land in fuzz/artifacts/<target>/;
# keep each as a regression fixture under tests/fixtures/fuzz/ once fixed.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -eu
cd "$(dirname "$0")/.."
secs=${1:-600}
shift 2>/dev/null || true
targets=${*:-form mime pdf}
mkdir -p fuzz/corpus/form fuzz/corpus/mime fuzz/corpus/pdf
for f in tests/fixtures/applications/*/*.eml tests/fixtures/broken/*.eml tests/fixtures/fuzz/*; do
  [ -f "$f" ] || continue
  cp "$f" fuzz/corpus/mime/ 2>/dev/null || true
  cp "$f" fuzz/corpus/form/ 2>/dev/null || true
done
cp tests/fixtures/pdfs/cyclic.pdf fuzz/corpus/pdf/
if [ ! -e fuzz/corpus/pdf/notice.pdf ]; then
  demo=$(mktemp -d)
  cargo run -q -- demo "$demo/d" >/dev/null
  find "$demo/d" -name '*.pdf' | head -4 | while read -r p; do cp "$p" "fuzz/corpus/pdf/$(basename "$p" | md5sum | cut -c1-12).pdf"; done
  cp "$(find "$demo/d" -name '*.pdf' | head -1)" fuzz/corpus/pdf/notice.pdf
  rm -rf "$demo"
fi
for t in $targets; do
  echo "== $t: ${secs}s"
  cargo +nightly fuzz run -O "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 2>&1 | tail -25
done
