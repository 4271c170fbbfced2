//! The MIME walk: any bytes as a mail → Letter (texts, PDFs, charsets), then the pair
//! finder on every text. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(letter) = esurety::intake::letter::read(data) {
        for (_, text) in letter.texts() {
            let _ = esurety::owner::submission::find::pairs(text, "body");
            let _ = esurety::branch::application::form::has_form(text);
        }
    }
});
