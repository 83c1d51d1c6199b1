pub fn fold_email(s: &str) -> Option<String> {
    Some(s.trim().to_lowercase())
}
