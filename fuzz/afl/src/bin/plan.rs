//! AFL++ target: plan files. Any bytes are parsed as a plan (strict TOML, bounds, names); one
//! that loads goes through every lint rule. A panic is a finding.
//!
//! `cargo afl build --release && cargo afl fuzz -i in/plan -o out/plan target/release/plan`

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(plan) = rehearse::plan::Plan::from_str_named(text, "fuzz.toml") {
            let _ = rehearse::plan::lint::lint(&plan);
        }
    });
}
