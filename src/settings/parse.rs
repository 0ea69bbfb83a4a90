//! How setting values and the flags that mirror them are read, shared by the service's
//! [`Reader`](super::Reader) and the command line's argument parsers, so one value means the
//! same thing in both.

use std::time::Duration;
use url::Url;

/// A whole number in `min..=max`.
pub fn number(text: &str, min: u32, max: u32) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{text}' is not a whole number from {min} to {max}"
        )),
    }
}

/// A duration with its unit: `250ms`, `90s`, `25m`, `2h`, `7d`. A bare number is refused: it would
/// mean seconds to one reader and minutes to another.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 90s, 25m or 2h"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        "" => {
            return Err(format!(
                "'{text}' has no unit: write it as {text}s, {text}m or {text}h"
            ));
        }
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}': use ms, s, m, h or d"
            ));
        }
    };
    // A year is more than any scan or request needs; larger values overflow clocks.
    if !(0.0..=365.0 * 86_400.0).contains(&secs) {
        return Err(format!("'{text}' is out of range: at most a year (8760h)"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("'{text}': {e}"))
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`).
pub fn flag(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("'{text}' is not true or false")),
    }
}

/// Items separated by commas, semicolons or spaces.
pub fn list(text: &str) -> Vec<String> {
    text.split([',', ';', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The Azure DevOps base URL. https, or plain http to a loopback address (the simulator):
/// the credential travels with every request.
pub fn ado_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("'{text}' is not a URL ({e})"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(format!(
            "'{text}' must be an https URL (plain http only to a loopback address such as the simulator): \
             the credential is sent with every request"
        )),
    }
}

/// Whether the URL names this machine (`localhost`, `127.0.0.0/8`, `::1`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_their_unit() {
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("25m").unwrap(), Duration::from_secs(1500));
        assert_eq!(duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(duration("90").unwrap_err().contains("no unit"));
        assert!(duration("soon").is_err());
        assert_eq!(duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert!(duration("5w").unwrap_err().contains("unknown unit"));
        assert!(
            duration("3000000000000000h")
                .unwrap_err()
                .contains("out of range")
        );
    }

    #[test]
    fn the_ado_url_is_https_or_loopback() {
        assert!(ado_url("https://vssps.dev.azure.com").is_ok());
        assert!(ado_url("http://127.0.0.1:8080").is_ok());
        assert!(ado_url("http://localhost:8080").is_ok());
        assert!(ado_url("http://[::1]:8080").is_ok());
        let e = ado_url("http://ado.example.com").unwrap_err();
        assert!(e.contains("https"), "{e}");
        assert!(ado_url("not a url").is_err());
    }

    #[test]
    fn flags_and_lists() {
        assert_eq!((flag("TRUE"), flag("0")), (Ok(true), Ok(false)));
        assert!(flag("maybe").is_err());
        assert_eq!(list("a, b;c  d"), ["a", "b", "c", "d"]);
    }
}
