//! Request parameters from the query string and, for the `formPost` extension, a form body:
//! both are read, since clients send either (py-sonic POSTs by default).

use super::reply::ApiError;

#[derive(Debug, Default, Clone)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>, form: Option<&[u8]>) -> Params {
        let mut v: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            v.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        if let Some(f) = form {
            v.extend(form_urlencoded::parse(f).into_owned());
        }
        Params(v)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn require(&self, k: &str) -> Result<&str, ApiError> {
        self.get(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing(k))
    }

    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A whole number in `0..=max` (default when absent).
    pub fn number(&self, k: &str, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get(k) {
            None | Some("") => Ok(default.min(max)),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map(|n| n.min(max))
                .map_err(|_| ApiError::bad(k, "must be a whole number")),
        }
    }

    pub fn year(&self, k: &str) -> Result<Option<u16>, ApiError> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u16>()
                .map(Some)
                .map_err(|_| ApiError::bad(k, "must be a year")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_form_both_count() {
        let p = Params::parse(Some("u=a&id=1&id=2&size=x"), Some(b"t=ab%20c&id=3"));
        assert_eq!(p.get("u"), Some("a"));
        assert_eq!(p.get("t"), Some("ab c"));
        assert_eq!(p.all("id"), ["1", "2", "3"]);
        assert!(p.number("size", 10, 500).is_err());
        assert_eq!(p.number("count", 10, 500).unwrap(), 10);
        assert!(p.require("nothing").is_err());
        let p = Params::parse(Some("size=100000"), None);
        assert_eq!(p.number("size", 10, 500).unwrap(), 500);
    }
}
