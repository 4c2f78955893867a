//! AFL++ target: Nomad and Consul HTTP answers as the live driver parses them, through the
//! same function as the proptest harness (`tests/fuzz/answer_shapes.rs`). A panic is a
//! finding.
//!
//! `fuzz/afl/run answer SECONDS`

include!("../../../../tests/fuzz/answer_shapes.rs");

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = parse_every_answer_shape(data);
    });
}
