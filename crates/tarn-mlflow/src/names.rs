//! Run names for runs created without one, in MLflow's adjective-noun-number style.

const ADJECTIVES: &[&str] = &[
    "able", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "gentle", "glad", "grand", "keen", "kind",
    "lucky", "merry", "nimble", "polite", "quick", "quiet", "rare", "shy", "smart", "sunny", "swift", "tidy", "vast",
    "warm", "wise", "witty", "zesty",
];
const NOUNS: &[&str] = &[
    "bass", "bear", "bird", "cat", "colt", "crane", "deer", "dove", "duck", "eel", "elk", "finch", "fox", "frog",
    "goat", "hare", "hawk", "heron", "lark", "lynx", "mole", "moth", "newt", "owl", "pike", "ram", "seal", "snail",
    "swan", "toad", "trout", "wolf", "wren",
];

/// `quick-fox-417`, from the run id's bytes so no random source is needed.
pub fn run_name(run_id: &uuid::Uuid) -> String {
    let b = run_id.as_bytes();
    let adjective = ADJECTIVES[usize::from(b[0]) % ADJECTIVES.len()];
    let noun = NOUNS[usize::from(b[1]) % NOUNS.len()];
    let number = u16::from_le_bytes([b[2], b[3]]) % 1000;
    format!("{adjective}-{noun}-{number}")
}
