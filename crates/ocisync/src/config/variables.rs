//! `${VAR}` in config values, taken from the environment.
//!
//! Only string values are expanded (a key, a number or a boolean never is), once: a
//! variable's value is not searched for more `${…}`. `$${` is a literal `${`; a `$`
//! not followed by `{` is just a `$` (tag regexes end in `$`). An unset variable is a
//! problem of the value's key path. A value expanded into a password-like key is
//! remembered, so that messages and `ocisync config` show its `${VAR}`, never it.

use serde_yaml::Value;

/// What expanding a document's values found.
#[derive(Debug, Default)]
pub(super) struct Expansion {
    /// Some value held a `${VAR}` (so the document must be read again).
    pub changed: bool,
    /// Key path and message: an unset variable, an unterminated `${`, a bad name.
    pub problems: Vec<(String, String)>,
    /// Values of password-like keys that came from the environment.
    pub hidden: Vec<HiddenValue>,
}

/// A value shown as the reference it came from.
#[derive(Debug, Clone)]
pub(super) struct HiddenValue {
    pub value: String,
    /// `${NAME}`.
    pub reference: String,
}

impl Expansion {
    /// `text` with every hidden value replaced by its `${VAR}`.
    pub fn redact(&self, text: &str) -> String {
        self.hidden.iter().fold(text.to_owned(), |text, hidden| {
            text.replace(&hidden.value, &hidden.reference)
        })
    }
}

/// Expands every string value of `document` in place. A value with a problem is left
/// as written.
pub(super) fn expand_document(document: &mut Value, env: &dyn Fn(&str) -> Option<String>) -> Expansion {
    let mut expansion = Expansion::default();
    expand_value(document, "", env, &mut expansion);
    expansion
}

fn expand_value(value: &mut Value, path: &str, env: &dyn Fn(&str) -> Option<String>, expansion: &mut Expansion) {
    match value {
        Value::String(text) if text.contains("${") => match expand(text, env) {
            Ok((expanded, used)) => {
                if password_like(path) {
                    expansion
                        .hidden
                        .extend(
                            used.into_iter()
                                .filter(|(_, value)| !value.is_empty())
                                .map(|(name, value)| HiddenValue {
                                    value,
                                    reference: format!("${{{name}}}"),
                                }),
                        );
                }
                *text = expanded;
                expansion.changed = true;
            }
            Err(message) => expansion.problems.push((path.to_owned(), message)),
        },
        Value::Mapping(mapping) => {
            for (key, value) in mapping.iter_mut() {
                // Keys the config does not know fail the typed parse; these have names.
                let Some(key) = key.as_str() else { continue };
                let child = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                };
                expand_value(value, &child, env, expansion);
            }
        }
        Value::Sequence(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                expand_value(item, &format!("{path}[{index}]"), env, expansion);
            }
        }
        Value::Tagged(tagged) => expand_value(&mut tagged.value, path, env, expansion),
        _ => {}
    }
}

/// A key whose value is a secret or says where one is (`password_env`, `password_file`).
fn password_like(path: &str) -> bool {
    let key = path.rsplit('.').next().unwrap_or(path).to_ascii_lowercase();
    ["password", "secret", "token"].iter().any(|word| key.contains(word))
}

/// `text` with each `${NAME}` replaced, and the variables used; or why it cannot be.
pub(super) fn expand(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<(String, String)>), String> {
    let mut expanded = String::with_capacity(text.len());
    let mut used = Vec::new();
    let mut unset = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        expanded.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(escaped) = after.strip_prefix("$${") {
            expanded.push_str("${");
            rest = escaped;
        } else if let Some(reference) = after.strip_prefix("${") {
            let end = reference
                .find('}')
                .ok_or("unterminated ${ (write $${ for a literal ${)")?;
            let name = &reference[..end];
            if !valid_name(name) {
                return Err(format!(
                    "invalid variable name \"{name}\" in ${{…}}: letters, digits and _, not starting with a digit \
                     (write $${{ for a literal ${{)"
                ));
            }
            match env(name) {
                Some(value) => {
                    expanded.push_str(&value);
                    used.push((name.to_owned(), value));
                }
                None if !unset.contains(&name) => unset.push(name),
                None => {}
            }
            rest = &reference[end + 1..];
        } else {
            expanded.push('$');
            rest = &after[1..];
        }
    }
    expanded.push_str(rest);
    match unset.as_slice() {
        [] => Ok((expanded, used)),
        [name] => Err(format!("environment variable {name} is not set")),
        names => Err(format!("environment variables {} are not set", names.join(", "))),
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first == '_' || first.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("registry.example.com".into()),
            "PORT" => Some("5000".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn check(text: &str, expected: Result<&str, &str>) {
        let got = expand(text, &env).map(|(expanded, _)| expanded);
        assert_eq!(got.as_deref(), expected.map_err(str::to_owned).as_deref(), "{text}");
    }

    #[test]
    fn expands_references_and_keeps_everything_else() {
        check("https://${HOST}:${PORT}/v2", Ok("https://registry.example.com:5000/v2"));
        check("${HOST}", Ok("registry.example.com"));
        check("[${EMPTY}]", Ok("[]"));
        check("no variables", Ok("no variables"));
        check("^v1\\.\\d+$", Ok("^v1\\.\\d+$"));
        check("$HOST and $", Ok("$HOST and $"));
        check("a$$b", Ok("a$$b"));
    }

    #[test]
    fn a_doubled_dollar_before_a_brace_is_a_literal_reference() {
        check("$${HOST}", Ok("${HOST}"));
        // Read left to right: a `$`, then `$${`.
        check("$$${HOST}", Ok("$${HOST}"));
        check("$${NOT_SET}", Ok("${NOT_SET}"));
    }

    #[test]
    fn a_value_does_not_expand_again() {
        let env = |name: &str| (name == "OUTER").then(|| "${HOST}".to_owned());
        assert_eq!(expand("${OUTER}", &env).unwrap().0, "${HOST}");
    }

    #[test]
    fn problems_name_what_is_wrong() {
        check("${NOPE}", Err("environment variable NOPE is not set"));
        check("${A}-${B}-${A}", Err("environment variables A, B are not set"));
        check("${HOST", Err("unterminated ${ (write $${ for a literal ${)"));
        check(
            "${1X}",
            Err("invalid variable name \"1X\" in ${…}: letters, digits and _, not starting with a digit (write $${ for a literal ${)"),
        );
        check(
            "${HOST:-x}",
            Err("invalid variable name \"HOST:-x\" in ${…}: letters, digits and _, not starting with a digit (write $${ for a literal ${)"),
        );
    }

    #[test]
    fn password_like_keys_are_known_by_their_last_name() {
        assert!(password_like("registries.hub.password_env"));
        assert!(password_like("registries.hub.password_file"));
        assert!(password_like("registries.x.identity_token"));
        assert!(!password_like("registries.hub.username"));
        assert!(!password_like("registries.password.urls[0]"));
    }
}
