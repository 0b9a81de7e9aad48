//! Request headers a user adds (an API key, a tenant id): from the
//! scenario's `[headers]` table and `--header 'Name: value'`, with
//! `${NAME}` taken from the environment. Every value is treated as a
//! secret: only header names are ever written anywhere.

use std::collections::BTreeMap;

/// A header of the command line, `Name: value` as curl and oha take it.
pub fn parse_flag(flag: &str) -> Result<(String, String), String> {
    // The flag is not echoed: it may hold a secret.
    let (name, value) = flag.split_once(':').ok_or(
        "a header as 'Name: value' (e.g. 'Authorization: Bearer ${API_KEY}'), got one without ':'",
    )?;
    let name = name.trim();
    check_name(name)?;
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// A header name as HTTP allows it (a token), not one the load generator
/// sets itself.
pub fn check_name(name: &str) -> Result<(), String> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(format!(
            "{name:?} is not a header name (letters, digits and -, e.g. X-Api-Key)"
        ));
    }
    const OWN: [&str; 4] = [
        "content-type",
        "content-length",
        "host",
        "transfer-encoding",
    ];
    if OWN.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "{name} is set by the load generator for each request; it cannot be replaced"
        ));
    }
    Ok(())
}

/// `value` with every `${NAME}` replaced by `lookup(NAME)`. An unset
/// variable is an error naming it (never the value around it). `$$` is a
/// literal `$`.
pub fn expand(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail
                .find('}')
                .ok_or("a `${` without its closing `}` (write `$$` for a literal `$`)")?;
            let name = &tail[..end];
            let ok = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(format!(
                    "`${{{name}}}` is not an environment variable name (letters, digits, _)"
                ));
            }
            let v = lookup(name).ok_or_else(|| {
                format!("the environment variable {name} is not set; export it before the run")
            })?;
            out.push_str(&v);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The scenario's headers, then the command line's (a name given on both
/// takes the command line's value), each value expanded. The error names
/// the header and where it came from.
pub fn resolve(
    scenario: &BTreeMap<String, String>,
    flags: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |name: String, value: String| match out
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(&name))
    {
        Some(slot) => *slot = (name, value),
        None => out.push((name, value)),
    };
    for (name, value) in scenario {
        let v = expand(value, &lookup).map_err(|e| format!("headers.{name}: {e}"))?;
        put(name.clone(), v);
    }
    for flag in flags {
        let (name, value) = parse_flag(flag).map_err(|e| format!("--header: {e}"))?;
        let v = expand(&value, &lookup).map_err(|e| format!("--header {name}: {e}"))?;
        put(name, v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "API_KEY").then(|| "s3cr3t".to_owned())
    }

    #[test]
    fn variables_are_expanded_and_a_missing_one_is_named() {
        assert_eq!(expand("Bearer ${API_KEY}", env).unwrap(), "Bearer s3cr3t");
        assert_eq!(expand("a$$b$c", env).unwrap(), "a$b$c");
        let e = expand("Bearer ${NOPE}", env).unwrap_err();
        assert!(e.contains("NOPE is not set"), "{e}");
        assert!(expand("${API_KEY", env).unwrap_err().contains("closing"));
        assert!(
            expand("${1X}", env)
                .unwrap_err()
                .contains("not an environment")
        );
    }

    #[test]
    fn flags_win_over_the_scenario_and_values_stay_out_of_errors() {
        let scenario = BTreeMap::from([
            ("Authorization".to_owned(), "Bearer ${API_KEY}".to_owned()),
            ("X-Tenant".to_owned(), "a".to_owned()),
        ]);
        let got = resolve(&scenario, &["x-tenant: b".to_owned()], env).unwrap();
        assert_eq!(
            got,
            vec![
                ("Authorization".to_owned(), "Bearer s3cr3t".to_owned()),
                ("x-tenant".to_owned(), "b".to_owned()),
            ]
        );
        let e = resolve(&BTreeMap::new(), &["NoColon s3cr3t-value".to_owned()], env).unwrap_err();
        assert!(!e.contains("s3cr3t-value"), "{e}");
        assert!(
            parse_flag("Host: x")
                .unwrap_err()
                .contains("cannot be replaced")
        );
        assert!(parse_flag("Bad Name: x").is_err());
    }
}
