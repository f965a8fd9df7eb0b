//! What the HTTP examples share.

/// `Authorization: Bearer $MLAUDIT_TOKEN` for every request (the server refuses requests
/// without a token).
pub fn bearer_from_env() -> anyhow::Result<reqwest::header::HeaderMap> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(token) = std::env::var("MLAUDIT_TOKEN") {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(headers)
}
