//! Web sites that embed chat for their own users (ImbaChat's widgets): a site signs its users
//! in with HS256 tokens `{user_id, exp}` made with the site's secret, and answers the server's
//! users-info requests with their names and avatars. This module owns the site record, the
//! rules for site ids and site user ids, and the account name a site user gets.
//!
//! A site user's account is `SITE.ID`: the site's id, a dot, and the user's id on the site
//! when that is made of lowercase letters, digits, `_` and `-` (integers are written in
//! decimal); any other id is written as a second dot and the lowercase hex of its UTF-8
//! bytes (`shop.42`, `shop.p11-a`, `shop..50313120412d41` for "P11 A"). Site ids hold no dot,
//! so the name reads back unambiguously.

use crate::jid::MAX_USERNAME_LEN;

/// How the users-info URL takes the ids it is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdsIn {
    /// `?user_ids=1,2,3` (the ImbaChat docs' sample handler).
    #[default]
    Query,
    /// `…/1,2,3` appended as a path segment (the CMS plugins).
    Path,
}

impl IdsIn {
    pub fn as_str(self) -> &'static str {
        match self {
            IdsIn::Query => "query",
            IdsIn::Path => "path",
        }
    }

    pub fn parse(raw: &str) -> Option<IdsIn> {
        match raw {
            "query" => Some(IdsIn::Query),
            "path" => Some(IdsIn::Path),
            _ => None,
        }
    }
}

/// A site as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRecord {
    /// The widget id (ImbaChat's `DEV_ID`).
    pub id: String,
    pub name: String,
    /// Where the server asks for its users' names and avatars; empty: it is not asked.
    pub users_info_url: String,
    /// The Basic credentials the server sends to the users-info URL.
    pub api_login: String,
    pub api_password: String,
    /// Page origins (`scheme://host[:port]`) allowed to embed the widget and open `/ws`.
    pub origins: Vec<String>,
    pub ids_in: IdsIn,
    /// The HS256 key of the site's user tokens.
    pub secret: String,
    pub created_ms: i64,
    pub modified_ms: i64,
}

impl SiteRecord {
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin.trim_end_matches('/')))
    }
}

/// Longest site id.
pub const MAX_SITE_ID_LEN: usize = 32;
/// Longest user id a site may give (before encoding).
pub const MAX_SITE_USER_ID_LEN: usize = 64;

fn plain_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
}

/// A site id: 1–32 lowercase letters, digits, `_` or `-`, starting with a letter or digit.
pub fn check_site_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_SITE_ID_LEN {
        return Err(format!("a site id has 1 to {MAX_SITE_ID_LEN} characters"));
    }
    if !id.chars().all(plain_char) || !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "site id {id:?} must be lowercase letters, digits, '_' or '-', starting with a letter or digit"
        ));
    }
    Ok(())
}

/// A page origin as `origins` holds it: `http(s)://host[:port]`, no path.
pub fn check_origin(origin: &str) -> Result<String, String> {
    let trimmed = origin.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| format!("origin {origin:?} must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
        return Err(format!("origin {origin:?} is scheme://host[:port], without a path"));
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// The account name of user `user_id` of site `site` (see the module header); `Err` says
/// why the id cannot be one.
pub fn site_username(site: &str, user_id: &str) -> Result<String, String> {
    if user_id.is_empty() {
        return Err("user_id is empty".into());
    }
    if user_id.len() > MAX_SITE_USER_ID_LEN {
        return Err(format!("user_id is longer than {MAX_SITE_USER_ID_LEN} bytes"));
    }
    if user_id.chars().any(char::is_control) {
        return Err("user_id holds control characters".into());
    }
    let name = if user_id.chars().all(plain_char) {
        format!("{site}.{user_id}")
    } else {
        let hex: String = user_id.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{site}..{hex}")
    };
    if name.len() > MAX_USERNAME_LEN {
        return Err(format!("user_id is too long for an account name ({MAX_USERNAME_LEN} characters at most)"));
    }
    Ok(name)
}

/// The site and site user id an account name stands for, if it has a site user's shape.
pub fn parse_site_username(username: &str) -> Option<(&str, String)> {
    let (site, rest) = username.split_once('.')?;
    check_site_id(site).ok()?;
    let user_id = match rest.strip_prefix('.') {
        Some(hex) => {
            if hex.is_empty() || hex.len() % 2 != 0 {
                return None;
            }
            let bytes: Option<Vec<u8>> =
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect();
            String::from_utf8(bytes?).ok()?
        }
        None if !rest.is_empty() && rest.chars().all(plain_char) => rest.to_owned(),
        None => return None,
    };
    Some((site, user_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_user_names_read_back() {
        assert_eq!(site_username("shop", "42").unwrap(), "shop.42");
        assert_eq!(site_username("shop", "p11-a").unwrap(), "shop.p11-a");
        assert_eq!(site_username("shop", "P11 A").unwrap(), "shop..5031312041");
        for id in ["42", "p11-a", "P11 A", "é.x", "a.b"] {
            let name = site_username("shop", id).unwrap();
            crate::jid::Username::parse(&name).unwrap();
            assert_eq!(parse_site_username(&name), Some(("shop", id.to_owned())), "{id}");
        }
        assert!(site_username("shop", "").is_err());
        assert!(site_username("shop", &"x".repeat(65)).is_err());
        assert_eq!(parse_site_username("ann"), None);
        assert_eq!(parse_site_username("shop..zz"), None);
        assert_eq!(parse_site_username("Shop.1"), None);
    }

    #[test]
    fn site_ids_and_origins_are_checked() {
        assert!(check_site_id("shop-1").is_ok());
        for bad in ["", "Shop", "a.b", "-x", &"a".repeat(33)] {
            assert!(check_site_id(bad).is_err(), "{bad}");
        }
        assert_eq!(check_origin("http://Example.com:8080/").unwrap(), "http://example.com:8080");
        for bad in ["example.com", "http://", "http://a/b", "ftp://a"] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }
}
