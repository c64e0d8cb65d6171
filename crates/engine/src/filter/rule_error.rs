//! Why a content rule cannot be built, and which part of it is at fault, so that a
//! config loader can name the key without reading any message text.

/// The part of a rule a [`RuleProblem`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulePart {
    /// The catalog glob.
    Prefix,
    /// The `index`th include pattern.
    Include(usize),
    /// The `index`th exclude pattern.
    Exclude(usize),
    /// The `index`th immutable-tag pattern.
    Immutable(usize),
    /// The semver range.
    Semver,
    /// The number of highest versions kept.
    Latest,
    /// The `index`th platform.
    Platform(usize),
    /// The destination name prefix.
    Destination,
}

/// One thing wrong with a rule, and where.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RuleProblem {
    /// Where in the rule.
    pub part: RulePart,
    /// What is wrong there.
    #[source]
    pub error: RuleError,
}

impl RuleProblem {
    pub(crate) fn at(part: RulePart, error: RuleError) -> RuleProblem {
        RuleProblem { part, error }
    }
}

/// What is wrong with one part of a rule. Each message quotes the input.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A repository glob that does not parse.
    #[error("invalid glob \"{pattern}\": {}", source.kind())]
    Glob {
        /// The glob as written.
        pattern: String,
        /// The glob library's error.
        source: globset::Error,
    },
    /// A tag pattern that does not compile.
    #[error("invalid regex \"{pattern}\": {reason}")]
    Regex {
        /// The pattern as written (without the anchors that make it match whole tags).
        pattern: String,
        /// What is wrong, in one line (`unclosed character class`).
        reason: String,
        /// The regex library's error.
        source: regex::Error,
    },
    /// A semver range that does not parse.
    #[error("invalid semver range \"{range}\": {source}")]
    Semver {
        /// The range as written.
        range: String,
        /// The semver library's error.
        source: semver::Error,
    },
    /// `latest: 0`, which would keep no tag.
    #[error("must be at least 1 (0 would keep no tag)")]
    LatestZero,
    /// A platform that is not `os/architecture[/variant]` in lower case.
    #[error("invalid platform \"{text}\": expected os/architecture[/variant] in lower case, e.g. linux/arm64")]
    Platform {
        /// The platform as written.
        text: String,
    },
    /// A destination prefix that cannot start a repository name.
    #[error("\"{prefix}\" is not a repository name prefix")]
    DestinationPrefix {
        /// The prefix as written.
        prefix: String,
    },
}

/// The one-line reason a regex does not compile: the syntax error's kind, as the regex
/// parser itself classifies it, or the size limit it went past.
pub(crate) fn regex_reason(anchored: &str, error: &regex::Error) -> String {
    match regex_syntax::Parser::new().parse(anchored) {
        Err(regex_syntax::Error::Parse(syntax)) => syntax.kind().to_string(),
        Err(regex_syntax::Error::Translate(syntax)) => syntax.kind().to_string(),
        // Not a syntax error: the size limit, which the regex crate words in one line.
        _ => error.to_string(),
    }
}
