//! The PDF reader (what the pdf-worker runs): any bytes → page texts and attached data,
//! then the pair finder. Must never panic; hangs and memory blow-ups are findings too
//! (libFuzzer's -timeout and -rss_limit_mb).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = esurety::owner::submission::pdf::read(data) {
        for page in &t.pages {
            let _ = esurety::owner::submission::find::pairs(page, "pdf");
        }
    }
});
