//! Database URLs and connection errors without their secrets: what logs and messages may show.
//!
//! The URL is split the way libpq splits it (user info ends at the first `@` before any `/`,
//! hosts are a comma-separated list), not with a WHATWG URL parser: libpq accepts URLs that
//! parser refuses (several hosts) and reads some it parses differently (an unencoded `#` or
//! `?` in a password), and a redaction that disagrees with libpq about where the password is
//! shows it.

use url::form_urlencoded;

/// Query parameters whose values are secrets.
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// The libpq parameters whose values may be shown; any other key (a typo, or a password that
/// landed in the query through an unencoded `?`) is hidden with its value.
const SHOWN_PARAMETERS: [&str; 40] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "requiressl",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

const HIDDEN: &str = "***";

/// The pieces of a PostgreSQL URL, borrowed from it.
struct Parts<'a> {
    scheme: &'a str,
    user: Option<&'a str>,
    password: Option<&'a str>,
    hosts_and_path: &'a str,
    query: Option<&'a str>,
}

fn split(raw: &str) -> Option<Parts<'_>> {
    let (scheme, rest) = raw.split_once("://")?;
    if !matches!(scheme, "postgres" | "postgresql") {
        return None;
    }
    // A `?` before any `@` ends the search too: whatever follows it is then masked as query.
    let (userinfo, after) = match rest.find(['@', '/', '?']) {
        Some(i) if rest[i..].starts_with('@') => (Some(&rest[..i]), &rest[i + 1..]),
        _ => (None, rest),
    };
    let (user, password) = match userinfo.map(|u| u.split_once(':').ok_or(u)) {
        Some(Ok((user, password))) => (Some(user), Some(password)),
        Some(Err(user)) => (Some(user), None),
        None => (None, None),
    };
    let (hosts_and_path, query) = match after.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (after, None),
    };
    Some(Parts {
        scheme,
        user,
        password,
        hosts_and_path,
        query,
    })
}

/// The decoded, lower-cased key of one `key=value` query pair.
fn key_of(pair: &str) -> String {
    form_urlencoded::parse(pair.as_bytes())
        .next()
        .map(|(key, _)| key.to_ascii_lowercase())
        .unwrap_or_default()
}

/// The URL without its secrets, for messages and logs: the user info's password and the
/// values of `password=` and `sslpassword=` become `***`, and a query key libpq does not know
/// is hidden with its value. A URL of another scheme shows only its scheme.
pub fn redact(raw: &str) -> String {
    let raw = raw.trim();
    let Some(parts) = split(raw) else {
        return match raw.split_once("://") {
            Some((scheme, _))
                if !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                format!("{scheme}://(not shown)")
            }
            _ => "(a URL that is not shown)".to_owned(),
        };
    };
    let mut out = format!("{}://", parts.scheme);
    if let Some(user) = parts.user {
        out.push_str(user);
        if parts.password.is_some() {
            out.push(':');
            out.push_str(HIDDEN);
        }
        out.push('@');
    }
    out.push_str(parts.hosts_and_path);
    if let Some(query) = parts.query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| {
                let key = key_of(pair);
                if SECRET_PARAMETERS.contains(&key.as_str()) {
                    let raw_key = pair.split_once('=').map_or(pair, |(k, _)| k);
                    format!("{raw_key}={HIDDEN}")
                } else if SHOWN_PARAMETERS.contains(&key.as_str()) {
                    pair.to_owned()
                } else {
                    HIDDEN.to_owned()
                }
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// Whether every server the URL names is on this machine: loopback addresses, `localhost`,
/// or a Unix socket directory (an empty host, a host that is a path, or a `host=/dir` query
/// parameter, as libpq takes them), where clear text never crosses a network.
pub fn is_local(raw: &str) -> bool {
    let Some(parts) = split(raw.trim()) else {
        return false;
    };
    let local = |host: &str| {
        let host = percent_encoding::percent_decode_str(host).decode_utf8_lossy();
        let bare = host
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or_default();
        host.is_empty()
            || host.starts_with('/')
            || bare.eq_ignore_ascii_case("localhost")
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    let from_query: Vec<String> =
        form_urlencoded::parse(parts.query.unwrap_or_default().as_bytes())
            .filter(|(key, _)| key == "host" || key == "hostaddr")
            .map(|(_, value)| value.into_owned())
            .collect();
    if !from_query.is_empty() {
        return from_query.iter().flat_map(|v| v.split(',')).all(local);
    }
    let hosts = parts.hosts_and_path.split('/').next().unwrap_or_default();
    hosts.split(',').all(|h| {
        // `host:port`, `[::1]:port`: the port is not part of the host.
        let host = match h.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                host
            }
            _ => h,
        };
        local(host)
    })
}

/// The secrets of one URL, to take out of any text that may quote them: libpq's own error
/// messages echo parts of the connection string (an invalid percent-encoded password is quoted
/// whole, a URL with a space in it too).
#[derive(Clone, Default)]
pub(crate) struct Secrets(Vec<String>);

impl Secrets {
    pub(crate) fn of(raw: &str) -> Self {
        let mut found = Vec::new();
        let mut add = |secret: &str| {
            if secret.is_empty() {
                return;
            }
            found.push(secret.to_owned());
            // libpq decodes `%XX` escapes only (a `+` stays a `+`), as percent-encoding does.
            let decoded = percent_encoding::percent_decode_str(secret)
                .decode_utf8_lossy()
                .into_owned();
            if decoded != secret && !decoded.is_empty() {
                found.push(decoded);
            }
        };
        match split(raw.trim()) {
            Some(parts) => {
                if let Some(password) = parts.password {
                    add(password);
                }
                for pair in parts.query.unwrap_or_default().split('&') {
                    let key = key_of(pair);
                    if !SHOWN_PARAMETERS.contains(&key.as_str()) {
                        // A secret's value, or a key that is not one (hidden by `redact` too).
                        let value = pair.split_once('=').map_or(pair, |(_, v)| v);
                        add(value);
                        if !SECRET_PARAMETERS.contains(&key.as_str()) {
                            add(pair);
                        }
                    }
                }
            }
            // Not a URL this module can take apart: hide all of it.
            None => add(raw.trim()),
        }
        // Longest first, so that a secret containing another is replaced whole.
        found.sort_by_key(|s| std::cmp::Reverse(s.len()));
        found.dedup();
        Self(found)
    }

    /// `text` with every secret replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        self.0
            .iter()
            .fold(text.to_owned(), |text, secret| text.replace(secret, HIDDEN))
    }
}

/// Secrets are never printed, not even by `{:?}`.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} hidden)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_urls_are_loopback_localhost_or_unix_sockets() {
        for local in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@localhost/db",
            "postgresql://u@[::1]:5432/db",
            "postgresql://postgres@/postgres?host=/tmp/pg&port=55432",
            "postgresql://%2Fvar%2Frun%2Fpostgresql/db",
            "postgres://u@127.0.0.1,localhost/db",
        ] {
            assert!(is_local(local), "{local}");
        }
        for remote in [
            "postgres://u@db.example.com/db",
            "postgres://u@10.0.0.5:5432/db",
            "postgres://u@127.0.0.1,db.example.com/db",
            "postgres://u@localhost/db?host=db.example.com",
            "mysql://localhost/db",
        ] {
            assert!(!is_local(remote), "{remote}");
        }
    }

    #[test]
    fn redact_hides_every_password_and_nothing_else() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        let redacted = redact(
            "postgresql://app:p%40ss@db.internal/tickets?sslmode=verify-full&password=s3cret&PassWord=x&pass%77ord=y&sslpassword=k3y",
        );
        assert_eq!(
            redacted,
            "postgresql://app:***@db.internal/tickets?sslmode=verify-full&password=***&PassWord=***&pass%77ord=***&sslpassword=***"
        );
        assert_eq!(
            redact("postgres://u:pw@[::1]:5432/db?application_name=a+b"),
            "postgres://u:***@[::1]:5432/db?application_name=a+b"
        );
    }

    #[test]
    fn redact_keeps_the_hosts_of_a_multi_host_url() {
        assert_eq!(
            redact("postgres://app:pw@db1:5432,db2:5432/tickets?target_session_attrs=read-write&connect_timeout=2"),
            "postgres://app:***@db1:5432,db2:5432/tickets?target_session_attrs=read-write&connect_timeout=2"
        );
    }

    #[test]
    fn redact_shows_no_secret_of_urls_the_url_crate_reads_differently() {
        for (raw, secret) in [
            ("postgres://u:#pw@h/db", "#pw"),
            ("postgres://u:?pw@h/db", "pw"),
            ("postgres://u:p w@h/db", "p w"),
            ("postgres://u:50%off@h/db", "50%off"),
            ("postgres://h/db?password=a@b", "a@b"),
            ("postgres://h/db?passwrod=typo", "typo"),
            ("app:s3cret@db:5432/tickets", "s3cret"),
            ("my_user:pw@h/db?sslrootcert=file:///ca", "pw"),
            ("mysql://u:s3cret@h/db", "s3cret"),
        ] {
            let shown = redact(raw);
            assert!(!shown.contains(secret), "{raw} -> {shown}");
        }
        assert_eq!(redact("mysql://u:s3cret@h/db"), "mysql://(not shown)");
    }

    #[test]
    fn scrub_takes_every_form_of_the_secrets_out_of_a_message() {
        let secrets = Secrets::of("postgres://app:50%off@h/db?sslpassword=k%33y&sslmode=require");
        let message =
            "invalid percent-encoded token: \"50%off\"; key k3y or k%33y; sslmode require";
        assert_eq!(
            secrets.scrub(message),
            "invalid percent-encoded token: \"***\"; key *** or ***; sslmode require"
        );
        let encoded = Secrets::of("postgres://app:p%40ss@h/db");
        assert_eq!(encoded.scrub("p@ss and p%40ss"), "*** and ***");
        assert_eq!(format!("{encoded:?}"), "Secrets(2 hidden)");
    }
}
