//! SCIM filter expressions (RFC 7644 §3.4.2.2): lexer, recursive-descent parser and AST.
//!
//! The grammar implemented is the RFC's ABNF:
//!
//! ```text
//! FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
//! valuePath = attrPath "[" valFilter "]"        ; valFilter: FILTER without valuePath
//! attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
//! logExp    = FILTER SP ("and" / "or") SP FILTER ; "and" binds tighter than "or"
//! compValue = false / null / true / number / string   ; JSON literals
//! attrPath  = [URI ":"] ATTRNAME *1subAttr
//! ```
//!
//! Operators, keywords and literals are case-insensitive; strings are JSON strings with
//! JSON escapes. `$ref` is accepted as an attribute name (it is used in the core schemas
//! even though the ABNF's ATTRNAME cannot spell it).
//!
//! The parser is built for hostile input: it never panics, its work is linear in the input
//! length, the input length is capped ([`Limits::max_len`]) and nesting of parentheses,
//! `not` and value filters is capped ([`Limits::max_depth`]) so recursion stays shallow.
//! `and`/`or` chains are flattened into n-ary nodes, so long chains do not deepen the tree.
//!
//! The AST is purely syntactic; [`crate::scim::eval`] validates it against a schema and
//! evaluates it, and the storage layer can walk it ([`Filter::conjuncts`],
//! [`AttrPath::canonical`]) to push terms down to indexed columns.

use std::fmt;
use std::str::FromStr;

use serde_json::Number;

use super::error::ScimError;
use super::schema::{GROUP_URN, USER_URN};

/// Parser limits. The defaults suit request query strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum input length in bytes.
    pub max_len: usize,
    /// Maximum nesting of `(…)`, `not (…)` and `attr[…]` (clamped to [`MAX_DEPTH_CEILING`]).
    pub max_depth: usize,
}

/// Default maximum filter length in bytes.
pub const DEFAULT_MAX_LEN: usize = 16 * 1024;
/// Default maximum nesting depth.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Hard ceiling on [`Limits::max_depth`], keeping recursion far from the stack limit.
pub const MAX_DEPTH_CEILING: usize = 128;

impl Default for Limits {
    fn default() -> Self {
        Self { max_len: DEFAULT_MAX_LEN, max_depth: DEFAULT_MAX_DEPTH }
    }
}

/// An attribute path (RFC 7644 §3.10): `[urn ":"] name ["." sub]`.
///
/// Names keep the client's spelling; comparisons elsewhere are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// Schema URN prefix, e.g. `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    pub urn: Option<String>,
    /// Attribute name, e.g. `emails`.
    pub name: String,
    /// Sub-attribute name, e.g. `value`.
    pub sub: Option<String>,
}

impl AttrPath {
    /// An unqualified path without sub-attribute.
    pub fn new(name: impl Into<String>) -> Self {
        Self { urn: None, name: name.into(), sub: None }
    }

    /// An unqualified `name.sub` path.
    pub fn with_sub(name: impl Into<String>, sub: impl Into<String>) -> Self {
        Self { urn: None, name: name.into(), sub: Some(sub.into()) }
    }

    /// Parse a complete attribute path such as `name.givenName` or
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
    pub fn parse(input: &str) -> Result<Self, FilterError> {
        if input.len() > DEFAULT_MAX_LEN {
            return Err(FilterError::new(0, FilterErrorKind::TooLong { len: input.len(), max: DEFAULT_MAX_LEN }));
        }
        let mut lexer = Lexer::new(input);
        let (off, tok) = lexer.next_token()?;
        let path = match tok {
            Tok::Word(w) => parse_attr_word(w, off)?,
            other => {
                return Err(FilterError::new(
                    off,
                    FilterErrorKind::Unexpected { expected: "attribute path", found: other.describe() },
                ))
            }
        };
        let (off, tok) = lexer.next_token()?;
        if tok != Tok::End {
            return Err(FilterError::new(
                off,
                FilterErrorKind::Unexpected { expected: "end of attribute path", found: tok.describe() },
            ));
        }
        Ok(path)
    }

    /// Canonical lowercase form for indexing decisions: `username`, `emails.value`,
    /// `meta.lastmodified`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department`.
    ///
    /// The core User/Group URN prefix is dropped (core attributes are canonically
    /// unqualified); extension prefixes are kept. This is syntactic: an unqualified
    /// extension attribute (`department`) stays unqualified — use
    /// [`crate::scim::schema::ResolvedAttr::canonical`] for the schema-resolved form.
    pub fn canonical(&self) -> String {
        let mut s = String::with_capacity(
            self.urn.as_ref().map_or(0, |u| u.len() + 1)
                + self.name.len()
                + self.sub.as_ref().map_or(0, |s| s.len() + 1),
        );
        if let Some(urn) = &self.urn {
            if !(urn.eq_ignore_ascii_case(USER_URN) || urn.eq_ignore_ascii_case(GROUP_URN)) {
                s.push_str(urn);
                s.push(':');
            }
        }
        s.push_str(&self.name);
        if let Some(sub) = &self.sub {
            s.push('.');
            s.push_str(sub);
        }
        s.make_ascii_lowercase();
        s
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl FromStr for AttrPath {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A comparison operator (RFC 7644 §3.4.2.2, Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Lt,
    Ge,
    Le,
}

impl CompareOp {
    /// The operator keyword, lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Co => "co",
            Self::Sw => "sw",
            Self::Ew => "ew",
            Self::Gt => "gt",
            Self::Lt => "lt",
            Self::Ge => "ge",
            Self::Le => "le",
        }
    }

    /// Parse an operator keyword, case-insensitively.
    pub fn from_keyword(word: &str) -> Option<Self> {
        const OPS: [CompareOp; 9] = [
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Lt,
            CompareOp::Ge,
            CompareOp::Le,
        ];
        OPS.into_iter().find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    /// Whether this is an ordering operator (`gt`, `ge`, `lt`, `le`).
    pub fn is_ordering(self) -> bool {
        matches!(self, Self::Gt | Self::Ge | Self::Lt | Self::Le)
    }

    /// Whether this is a substring operator (`co`, `sw`, `ew`).
    pub fn is_substring(self) -> bool {
        matches!(self, Self::Co | Self::Sw | Self::Ew)
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison value: a JSON literal (RFC 7644 §3.4.2.2 `compValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Str(String),
    Num(Number),
    Bool(bool),
    Null,
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => write_json_string(f, s),
            Self::Num(n) => write!(f, "{n}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Null => f.write_str("null"),
        }
    }
}

fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// A parsed filter expression.
///
/// Invariants of parser output: `And`/`Or` hold at least two terms and never directly
/// contain a node of their own kind (chains are flattened). Paths inside a `ValuePath`
/// filter are relative to the elements of `path` (e.g. `type` in `emails[type eq "work"]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `path op value`.
    Compare { path: AttrPath, op: CompareOp, value: CompValue },
    /// `path pr`.
    Present(AttrPath),
    /// Conjunction of two or more terms.
    And(Vec<Filter>),
    /// Disjunction of two or more terms.
    Or(Vec<Filter>),
    /// `not (filter)`.
    Not(Box<Filter>),
    /// `path[filter]`: some value of the multi-valued (or complex) `path` matches `filter`.
    ValuePath { path: AttrPath, filter: Box<Filter> },
}

impl Filter {
    /// Parse with the default [`Limits`].
    pub fn parse(input: &str) -> Result<Self, FilterError> {
        Self::parse_with(input, &Limits::default())
    }

    /// Parse with explicit limits.
    pub fn parse_with(input: &str, limits: &Limits) -> Result<Self, FilterError> {
        if input.len() > limits.max_len {
            return Err(FilterError::new(0, FilterErrorKind::TooLong { len: input.len(), max: limits.max_len }));
        }
        let mut p = Parser::new(input, limits.max_depth);
        if p.peek()?.1 == Tok::End {
            return Err(FilterError::new(0, FilterErrorKind::Empty));
        }
        p.parse(Root::Top)
    }

    /// The top-level AND terms: the children of a top-level `And`, else just `self`.
    /// A store can translate the terms it indexes and evaluate the rest in memory.
    pub fn conjuncts(&self) -> &[Filter] {
        match self {
            Self::And(terms) => terms,
            other => std::slice::from_ref(other),
        }
    }

    /// The top-level OR terms: the children of a top-level `Or`, else just `self`.
    pub fn disjuncts(&self) -> &[Filter] {
        match self {
            Self::Or(terms) => terms,
            other => std::slice::from_ref(other),
        }
    }

    /// Conjunction of two filters, flattening nested `And`s.
    pub fn and(self, other: Filter) -> Filter {
        let mut terms = Vec::new();
        push_flat(&mut terms, self, true);
        push_flat(&mut terms, other, true);
        Self::And(terms)
    }

    /// Disjunction of two filters, flattening nested `Or`s.
    pub fn or(self, other: Filter) -> Filter {
        let mut terms = Vec::new();
        push_flat(&mut terms, self, false);
        push_flat(&mut terms, other, false);
        Self::Or(terms)
    }

    /// Visit every node, pre-order (value-path filters included).
    pub fn walk<'a>(&'a self, visit: &mut impl FnMut(&'a Filter)) {
        visit(self);
        match self {
            Self::And(terms) | Self::Or(terms) => terms.iter().for_each(|t| t.walk(visit)),
            Self::Not(inner) => inner.walk(visit),
            Self::ValuePath { filter, .. } => filter.walk(visit),
            Self::Compare { .. } | Self::Present(_) => {}
        }
    }

    fn fmt_term(&self, f: &mut fmt::Formatter<'_>, parent_is_and: bool) -> fmt::Result {
        if parent_is_and && matches!(self, Self::Or(_)) {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

fn push_flat(terms: &mut Vec<Filter>, f: Filter, and: bool) {
    match (f, and) {
        (Filter::And(inner), true) | (Filter::Or(inner), false) => terms.extend(inner),
        (other, _) => terms.push(other),
    }
}

impl fmt::Display for Filter {
    /// A canonical textual form that parses back to the same AST.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Self::Present(path) => write!(f, "{path} pr"),
            Self::And(terms) | Self::Or(terms) => {
                let is_and = matches!(self, Self::And(_));
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if is_and { " and " } else { " or " })?;
                    }
                    t.fmt_term(f, is_and)?;
                }
                Ok(())
            }
            Self::Not(inner) => write!(f, "not ({inner})"),
            Self::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

impl FromStr for Filter {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A filter syntax error: what went wrong and at which byte offset of the input.
/// Maps to the `invalidFilter` scimType.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter at byte {offset}: {kind}")]
pub struct FilterError {
    /// Byte offset into the input where the problem was detected.
    pub offset: usize,
    pub kind: FilterErrorKind,
}

impl FilterError {
    fn new(offset: usize, kind: FilterErrorKind) -> Self {
        Self { offset, kind }
    }
}

/// The kinds of [`FilterError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterErrorKind {
    #[error("empty filter")]
    Empty,
    #[error("input is {len} bytes, more than the {max}-byte limit")]
    TooLong { len: usize, max: usize },
    #[error("nested more than {0} levels deep")]
    TooDeep(usize),
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    #[error("unterminated string")]
    UnterminatedString,
    #[error("invalid escape sequence in string")]
    InvalidEscape,
    #[error("control characters in strings must be escaped")]
    ControlCharInString,
    #[error("invalid number `{0}`")]
    InvalidNumber(String),
    #[error("invalid attribute path `{path}`: {reason}")]
    InvalidAttrPath { path: String, reason: &'static str },
    #[error("value filters cannot be nested")]
    NestedValuePath,
    #[error("expected {expected}, found {found}")]
    Unexpected { expected: &'static str, found: String },
}

impl From<FilterError> for ScimError {
    fn from(e: FilterError) -> Self {
        ScimError::InvalidFilter(e.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok<'a> {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// Attribute path, operator, keyword or bare literal.
    Word(&'a str),
    Str(String),
    Num(Number),
    End,
}

impl Tok<'_> {
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Word(w) => format!("`{}`", truncate(w)),
            Tok::Str(s) => format!("string \"{}\"", truncate(s)),
            Tok::Num(n) => format!("number {n}"),
            Tok::End => "end of input".into(),
        }
    }
}

/// At most the first 40 bytes of `s` (cut at a character boundary), for messages.
pub(crate) fn truncate(s: &str) -> &str {
    const MAX: usize = 40;
    if s.len() <= MAX {
        return s;
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-' | b'$')
}

pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self { src, pos: 0 }
    }

    /// Byte offset just past the last consumed token.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn next_token(&mut self) -> Result<(usize, Tok<'a>), FilterError> {
        let bytes = self.src.as_bytes();
        while bytes.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&b) = bytes.get(start) else {
            return Ok((start, Tok::End));
        };
        let single = match b {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return Ok((start, t));
        }
        if b == b'"' {
            return self.string(start).map(|s| (start, Tok::Str(s)));
        }
        if b.is_ascii_digit() || b == b'-' {
            let mut end = start + 1;
            while bytes.get(end).is_some_and(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
                end += 1;
            }
            self.pos = end;
            // The token is ASCII, so these are character boundaries.
            let text = self.src.get(start..end).unwrap_or_default();
            return match serde_json::from_str::<Number>(text) {
                Ok(n) => Ok((start, Tok::Num(n))),
                Err(_) => Err(FilterError::new(start, FilterErrorKind::InvalidNumber(truncate(text).to_string()))),
            };
        }
        if b.is_ascii_alphabetic() || b == b'$' {
            let mut end = start + 1;
            while bytes.get(end).is_some_and(|&b| is_word_byte(b)) {
                end += 1;
            }
            self.pos = end;
            return Ok((start, Tok::Word(self.src.get(start..end).unwrap_or_default())));
        }
        let c = self.src.get(start..).and_then(|r| r.chars().next()).unwrap_or('\u{fffd}');
        Err(FilterError::new(start, FilterErrorKind::UnexpectedChar(c)))
    }

    /// Decode a JSON string starting at the opening quote.
    fn string(&mut self, start: usize) -> Result<String, FilterError> {
        let mut out = String::new();
        // `start` is the opening quote (one byte).
        let mut chars = self.src.get(start + 1..).unwrap_or_default().char_indices();
        let at = |i: usize| start + 1 + i;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = at(i) + 1;
                    return Ok(out);
                }
                '\\' => {
                    let Some((j, e)) = chars.next() else { break };
                    let decoded = match e {
                        '"' => '"',
                        '\\' => '\\',
                        '/' => '/',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'u' => {
                            let hi = read_hex4(&mut chars)
                                .ok_or_else(|| FilterError::new(at(j), FilterErrorKind::InvalidEscape))?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                // A high surrogate must be followed by `\uDC00`–`\uDFFF`.
                                let lo = match (chars.next(), chars.next()) {
                                    (Some((_, '\\')), Some((_, 'u'))) => read_hex4(&mut chars),
                                    _ => None,
                                }
                                .filter(|lo| (0xDC00..0xE000).contains(lo))
                                .ok_or_else(|| FilterError::new(at(j), FilterErrorKind::InvalidEscape))?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code)
                                .ok_or_else(|| FilterError::new(at(j), FilterErrorKind::InvalidEscape))?
                        }
                        _ => return Err(FilterError::new(at(j), FilterErrorKind::InvalidEscape)),
                    };
                    if decoded == '\0' {
                        // No stored text holds NUL (PostgreSQL cannot store it at all).
                        return Err(FilterError::new(at(j), FilterErrorKind::ControlCharInString));
                    }
                    out.push(decoded);
                }
                c if (c as u32) < 0x20 => return Err(FilterError::new(at(i), FilterErrorKind::ControlCharInString)),
                c => out.push(c),
            }
        }
        self.pos = self.src.len();
        Err(FilterError::new(start, FilterErrorKind::UnterminatedString))
    }
}

fn read_hex4(chars: &mut std::str::CharIndices<'_>) -> Option<u32> {
    let mut v = 0u32;
    for _ in 0..4 {
        let (_, c) = chars.next()?;
        v = v * 16 + c.to_digit(16)?;
    }
    Some(v)
}

/// An attribute name (RFC 7643 §2.1: ALPHA *(nameChar)), or `$ref`.
pub(crate) fn is_attr_name(s: &str) -> bool {
    match s.as_bytes().split_first() {
        Some((c, rest)) if c.is_ascii_alphabetic() => {
            rest.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
        }
        Some((b'$', _)) => s.eq_ignore_ascii_case("$ref"),
        _ => false,
    }
}

/// Split a word token into an [`AttrPath`]. The URN is everything before the last `:`.
pub(crate) fn parse_attr_word(word: &str, offset: usize) -> Result<AttrPath, FilterError> {
    let bad = |reason| {
        FilterError::new(offset, FilterErrorKind::InvalidAttrPath { path: truncate(word).to_string(), reason })
    };
    let (urn, rest) = match word.rsplit_once(':') {
        Some((urn, rest)) => {
            if !urn.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) || urn.contains('$') {
                return Err(bad("malformed schema URN"));
            }
            (Some(urn.to_string()), rest)
        }
        None => (None, word),
    };
    let mut parts = rest.split('.');
    let name = parts.next().unwrap_or_default();
    let sub = parts.next();
    if parts.next().is_some() {
        return Err(bad("at most one sub-attribute level is allowed"));
    }
    if !is_attr_name(name) {
        return Err(bad("attribute names start with a letter and contain letters, digits, `-` or `_`"));
    }
    if let Some(sub) = sub {
        if !is_attr_name(sub) {
            return Err(bad("malformed sub-attribute name"));
        }
    }
    Ok(AttrPath { urn, name: name.to_string(), sub: sub.map(str::to_string) })
}

// ---------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------

/// An open group while parsing: the top level, `( … )`, `not ( … )` or `attr[ … ]`.
struct Frame {
    kind: FrameKind,
    /// Completed `or` terms of this group.
    ors: Vec<Filter>,
    /// `and` terms of the `or` term being built.
    ands: Vec<Filter>,
}

enum FrameKind {
    /// The whole input, closed by end of input.
    Top,
    /// A value filter parsed on its own (PATCH paths), closed by `]`.
    Bracket,
    Paren,
    Not,
    ValuePath(AttrPath),
}

impl Frame {
    fn new(kind: FrameKind) -> Self {
        Self { kind, ors: Vec::new(), ands: Vec::new() }
    }

    fn end_and(&mut self) {
        let ands = std::mem::take(&mut self.ands);
        push_flat(&mut self.ors, build(ands, true), false);
    }

    fn close(mut self) -> (FrameKind, Filter) {
        self.end_and();
        (self.kind, build(self.ors, false))
    }
}

/// One term stays itself; several become an `And`/`Or`.
fn build(mut terms: Vec<Filter>, and: bool) -> Filter {
    if terms.len() == 1 {
        if let Some(t) = terms.pop() {
            return t;
        }
    }
    if and {
        Filter::And(terms)
    } else {
        Filter::Or(terms)
    }
}

/// Where a parse started, which decides what closes it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    /// A full filter, ended by end of input.
    Top,
    /// A value filter after `[`, ended by `]`.
    Bracket,
}

/// An operator-precedence parser with an explicit stack of open groups: nesting depth
/// costs heap, not call stack, so no input can overflow the stack while parsing.
pub(crate) struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<(usize, Tok<'a>)>,
    max_depth: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str, max_depth: usize) -> Self {
        Self { lexer: Lexer::new(src), peeked: None, max_depth: max_depth.min(MAX_DEPTH_CEILING) }
    }

    /// Byte offset just past the last consumed token (nothing may be peeked).
    pub(crate) fn consumed_up_to(&self) -> usize {
        self.lexer.pos()
    }

    fn peek(&mut self) -> Result<&(usize, Tok<'a>), FilterError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        match &self.peeked {
            Some(t) => Ok(t),
            None => Err(FilterError::new(self.lexer.pos(), FilterErrorKind::Empty)),
        }
    }

    fn next(&mut self) -> Result<(usize, Tok<'a>), FilterError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_token(),
        }
    }

    /// Parse a filter. For [`Root::Top`] the whole input must be consumed; for
    /// [`Root::Bracket`] (the `[` already consumed) parsing stops after the closing `]`.
    pub(crate) fn parse(&mut self, root: Root) -> Result<Filter, FilterError> {
        let mut stack = vec![Frame::new(match root {
            Root::Top => FrameKind::Top,
            Root::Bracket => FrameKind::Bracket,
        })];
        let mut in_value = root == Root::Bracket;
        if root == Root::Bracket && stack.len() > self.max_depth {
            return Err(FilterError::new(self.lexer.pos(), FilterErrorKind::TooDeep(self.max_depth)));
        }
        loop {
            // Expect an operand: a group opener or an attribute expression.
            let (off, tok) = self.next()?;
            let opened = match tok {
                Tok::LParen => Some(FrameKind::Paren),
                Tok::Word(w) if w.eq_ignore_ascii_case("not") && self.peek()?.1 == Tok::LParen => {
                    self.next()?;
                    Some(FrameKind::Not)
                }
                Tok::Word(w) => {
                    let path = parse_attr_word(w, off)?;
                    let (op_off, tok) = self.next()?;
                    match tok {
                        Tok::LBracket => {
                            if in_value {
                                return Err(FilterError::new(op_off, FilterErrorKind::NestedValuePath));
                            }
                            if path.sub.is_some() {
                                return Err(FilterError::new(
                                    off,
                                    FilterErrorKind::InvalidAttrPath {
                                        path: truncate(w).to_string(),
                                        reason: "a value filter applies to an attribute, not a sub-attribute",
                                    },
                                ));
                            }
                            in_value = true;
                            Some(FrameKind::ValuePath(path))
                        }
                        Tok::Word(op) if op.eq_ignore_ascii_case("pr") => {
                            push_operand(&mut stack, Filter::Present(path));
                            None
                        }
                        Tok::Word(op) => {
                            let op = CompareOp::from_keyword(op).ok_or_else(|| {
                                FilterError::new(
                                    op_off,
                                    FilterErrorKind::Unexpected {
                                        expected: "comparison operator or `pr`",
                                        found: Tok::Word(op).describe(),
                                    },
                                )
                            })?;
                            let value = self.parse_value()?;
                            push_operand(&mut stack, Filter::Compare { path, op, value });
                            None
                        }
                        other => {
                            return Err(FilterError::new(
                                op_off,
                                FilterErrorKind::Unexpected {
                                    expected: "comparison operator, `pr` or `[`",
                                    found: other.describe(),
                                },
                            ))
                        }
                    }
                }
                other => {
                    return Err(FilterError::new(
                        off,
                        FilterErrorKind::Unexpected {
                            expected: "attribute path, `(` or `not`",
                            found: other.describe(),
                        },
                    ))
                }
            };
            if let Some(kind) = opened {
                stack.push(Frame::new(kind));
                if stack.len() - 1 > self.max_depth {
                    return Err(FilterError::new(off, FilterErrorKind::TooDeep(self.max_depth)));
                }
                continue;
            }

            // After an operand: `and`, `or`, or closers.
            loop {
                let (off, tok) = self.next()?;
                let Some(top) = stack.last_mut() else {
                    return Err(FilterError::new(off, FilterErrorKind::Empty));
                };
                match (&tok, &top.kind) {
                    (Tok::Word(w), _) if w.eq_ignore_ascii_case("and") => break,
                    (Tok::Word(w), _) if w.eq_ignore_ascii_case("or") => {
                        top.end_and();
                        break;
                    }
                    (Tok::End, FrameKind::Top) | (Tok::RBracket, FrameKind::Bracket) => {
                        return match stack.pop() {
                            Some(frame) if stack.is_empty() => Ok(frame.close().1),
                            _ => Err(FilterError::new(off, FilterErrorKind::Empty)),
                        };
                    }
                    (Tok::RParen, FrameKind::Paren | FrameKind::Not) | (Tok::RBracket, FrameKind::ValuePath(_)) => {
                        let Some(frame) = stack.pop() else {
                            return Err(FilterError::new(off, FilterErrorKind::Empty));
                        };
                        let f = match frame.close() {
                            (FrameKind::Not, f) => Filter::Not(Box::new(f)),
                            (FrameKind::ValuePath(path), f) => {
                                in_value = root == Root::Bracket;
                                Filter::ValuePath { path, filter: Box::new(f) }
                            }
                            (_, f) => f,
                        };
                        push_operand(&mut stack, f);
                    }
                    (_, kind) => {
                        let expected = match kind {
                            FrameKind::Top => "`and`, `or` or end of filter",
                            FrameKind::Paren | FrameKind::Not => "`and`, `or` or `)`",
                            FrameKind::Bracket | FrameKind::ValuePath(_) => "`and`, `or` or `]`",
                        };
                        return Err(FilterError::new(
                            off,
                            FilterErrorKind::Unexpected { expected, found: tok.describe() },
                        ));
                    }
                }
            }
        }
    }

    fn parse_value(&mut self) -> Result<CompValue, FilterError> {
        let (off, tok) = self.next()?;
        match tok {
            Tok::Str(s) => Ok(CompValue::Str(s)),
            Tok::Num(n) => Ok(CompValue::Num(n)),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Ok(CompValue::Bool(true)),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Ok(CompValue::Bool(false)),
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => Ok(CompValue::Null),
            other => Err(FilterError::new(
                off,
                FilterErrorKind::Unexpected {
                    expected: "a value (string, number, true, false or null)",
                    found: other.describe(),
                },
            )),
        }
    }

    /// The next token must be a word; returns it with its offset.
    pub(crate) fn next_word(&mut self, expected: &'static str) -> Result<(usize, &'a str), FilterError> {
        match self.next()? {
            (off, Tok::Word(w)) => Ok((off, w)),
            (off, other) => {
                Err(FilterError::new(off, FilterErrorKind::Unexpected { expected, found: other.describe() }))
            }
        }
    }

    /// Consume the next token if it is `[`.
    pub(crate) fn eat_lbracket(&mut self) -> Result<bool, FilterError> {
        if self.peek()?.1 == Tok::LBracket {
            self.next()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// The next token, for error reporting by callers: offset, description, is-end.
    pub(crate) fn describe_next(&mut self) -> Result<(usize, String, bool), FilterError> {
        let (off, tok) = self.peek()?;
        Ok((*off, tok.describe(), *tok == Tok::End))
    }
}

/// Add a finished operand to the innermost open group.
fn push_operand(stack: &mut [Frame], f: Filter) {
    if let Some(top) = stack.last_mut() {
        push_flat(&mut top.ands, f, true);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn p(s: &str) -> Filter {
        Filter::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn cmp(path: AttrPath, op: CompareOp, value: CompValue) -> Filter {
        Filter::Compare { path, op, value }
    }
    fn s(v: &str) -> CompValue {
        CompValue::Str(v.into())
    }

    #[test]
    fn every_operator_parses_case_insensitively() {
        for (kw, op) in [
            ("eq", CompareOp::Eq),
            ("NE", CompareOp::Ne),
            ("Co", CompareOp::Co),
            ("sW", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("GT", CompareOp::Gt),
            ("lt", CompareOp::Lt),
            ("ge", CompareOp::Ge),
            ("Le", CompareOp::Le),
        ] {
            assert_eq!(p(&format!("userName {kw} \"x\"")), cmp(AttrPath::new("userName"), op, s("x")));
        }
        assert_eq!(p("title PR"), Filter::Present(AttrPath::new("title")));
    }

    #[test]
    fn literals() {
        let cases = [
            ("active eq true", CompValue::Bool(true)),
            ("active eq FALSE", CompValue::Bool(false)),
            ("title eq null", CompValue::Null),
            ("x eq 42", CompValue::Num(42.into())),
            ("x eq -1.5e3", CompValue::Num(serde_json::from_str("-1.5e3").unwrap())),
            (r#"x eq "a\"b\\c\u00e9\n\ud83d\ude00""#, s("a\"b\\c\u{e9}\n\u{1F600}")),
            (r#"x eq "ünï""#, s("ünï")),
        ];
        for (src, v) in cases {
            assert_eq!(p(src), cmp(AttrPath::new(src.split(' ').next().unwrap()), CompareOp::Eq, v), "{src}");
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let a = cmp(AttrPath::new("a"), CompareOp::Eq, s("1"));
        let b = cmp(AttrPath::new("b"), CompareOp::Eq, s("2"));
        let c = cmp(AttrPath::new("c"), CompareOp::Eq, s("3"));
        assert_eq!(
            p(r#"a eq "1" or b eq "2" and c eq "3""#),
            Filter::Or(vec![a.clone(), Filter::And(vec![b.clone(), c.clone()])])
        );
        assert_eq!(
            p(r#"a eq "1" and b eq "2" or c eq "3""#),
            Filter::Or(vec![Filter::And(vec![a.clone(), b.clone()]), c.clone()])
        );
        assert_eq!(
            p(r#"(a eq "1" or b eq "2") and c eq "3""#),
            Filter::And(vec![Filter::Or(vec![a.clone(), b.clone()]), c.clone()])
        );
        // Chains flatten, including through redundant parentheses.
        assert_eq!(p(r#"a eq "1" and (b eq "2" and c eq "3")"#), Filter::And(vec![a.clone(), b.clone(), c.clone()]));
        assert_eq!(p(r#"a eq "1" OR b eq "2" Or c eq "3""#), Filter::Or(vec![a, b, c]));
    }

    #[test]
    fn not_and_grouping() {
        let f = p(r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#);
        let Filter::And(terms) = &f else { panic!("{f:?}") };
        assert_eq!(terms.len(), 2);
        let Filter::Not(inner) = &terms[1] else { panic!() };
        assert!(matches!(**inner, Filter::Or(ref v) if v.len() == 2));
        assert_eq!(p("NOT(title pr)"), Filter::Not(Box::new(Filter::Present(AttrPath::new("title")))));
        // `not` not followed by `(` is an attribute name.
        assert_eq!(p("not pr"), Filter::Present(AttrPath::new("not")));
        assert_eq!(p("((title pr))"), Filter::Present(AttrPath::new("title")));
    }

    #[test]
    fn value_path_filters() {
        let f =
            p(r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#);
        let Filter::Or(terms) = &f else { panic!() };
        let Filter::ValuePath { path, filter } = &terms[0] else { panic!() };
        assert_eq!(path, &AttrPath::new("emails"));
        assert_eq!(filter.conjuncts().len(), 2);
        assert_eq!(
            p(r#"members[not (value eq "1")]"#),
            Filter::ValuePath {
                path: AttrPath::new("members"),
                filter: Box::new(Filter::Not(Box::new(cmp(AttrPath::new("value"), CompareOp::Eq, s("1"))))),
            }
        );
    }

    #[test]
    fn urn_qualified_paths() {
        let f = p(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x""#);
        let Filter::Compare { path, .. } = &f else { panic!() };
        assert_eq!(path.urn.as_deref(), Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
        assert_eq!(path.name, "department");
        assert_eq!(path.canonical(), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department");

        let f = p(r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName sw "J""#);
        let Filter::Compare { path, .. } = &f else { panic!() };
        assert_eq!(path.sub.as_deref(), Some("familyName"));
        assert_eq!(path.canonical(), "name.familyname");
        assert_eq!(AttrPath::parse("meta.lastModified").unwrap().canonical(), "meta.lastmodified");
        assert_eq!(AttrPath::parse("members.$ref").unwrap().sub.as_deref(), Some("$ref"));
    }

    #[test]
    fn conjuncts_and_walk() {
        let f = p(r#"userName eq "a" and active eq true and (title pr or nickName pr)"#);
        let c: Vec<String> = f.conjuncts().iter().map(|t| t.to_string()).collect();
        assert_eq!(c, [r#"userName eq "a""#, "active eq true", "title pr or nickName pr"]);
        assert_eq!(p("title pr").conjuncts().len(), 1);
        let mut n = 0;
        f.walk(&mut |_| n += 1);
        assert_eq!(n, 6);
    }

    /// Found by the `scim_filter` fuzz target: without correctly rounded float parsing,
    /// `-18e77` and its own display form parsed to two different numbers.
    #[test]
    fn large_exponents_parse_exactly_and_round_trip() {
        for src in ["E eq -18e77", "x gt 1.7976931348623157e308", "x lt 5e-324", "x eq 0.1e1"] {
            let f = p(src);
            assert_eq!(p(&f.to_string()), f, "{src} → {f}");
        }
        let f = p("E eq -18e77");
        assert_eq!(f.to_string(), "E eq -1.8e+78");
    }

    #[test]
    fn display_round_trips() {
        for src in [
            r#"userName eq "bjensen""#,
            r#"a eq 1 or b eq 2 and c eq 3"#,
            r#"(a eq 1 or b eq 2) and not (c pr)"#,
            r#"emails[type eq "work" and (value co "x" or value ew "y")] or x pr"#,
            r#"not (a pr) and (b pr or c pr) or (d pr and (e pr or f pr))"#,
            r#"x eq "q\"\\\n\u0001""#,
        ] {
            if let Ok(f) = Filter::parse(src) {
                assert_eq!(Filter::parse(&f.to_string()).unwrap(), f, "{src} -> {f}");
            }
        }
    }

    #[test]
    fn errors_say_where_and_what() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "empty filter"),
            ("userName", 8, "expected comparison operator, `pr` or `[`, found end of input"),
            ("userName eq", 11, "expected a value"),
            ("userName eq bjensen", 12, "expected a value"),
            ("userName zz \"x\"", 9, "expected comparison operator or `pr`, found `zz`"),
            ("userName eq \"x", 12, "unterminated string"),
            ("userName eq \"\\q\"", 14, "invalid escape"),
            ("userName eq \"a\" and", 19, "expected attribute path"),
            ("(userName pr", 12, "expected `and`, `or` or `)`"),
            ("userName pr)", 11, "expected `and`, `or` or end of filter"),
            ("emails[type eq \"w\"", 18, "expected `and`, `or` or `]`"),
            ("emails[ims[type pr]]", 10, "value filters cannot be nested"),
            ("name.givenName[x pr]", 0, "not a sub-attribute"),
            ("a.b.c pr", 0, "at most one sub-attribute"),
            ("x eq 01", 5, "invalid number"),
            ("x eq 1 # 2", 7, "unexpected character '#'"),
            ("x eq \"a\u{1}\"", 7, "control characters"),
            (":x pr", 0, "unexpected character ':'"),
            ("urn:: pr", 0, "invalid attribute path"),
            ("x eq \"\\ud800\"", 7, "invalid escape"),
        ];
        for (src, off, msg) in cases {
            let e = Filter::parse(src).unwrap_err();
            assert_eq!(e.offset, *off, "{src}: {e}");
            assert!(e.to_string().contains(msg), "{src}: {e}");
            assert!(e.to_string().starts_with(&format!("invalid filter at byte {off}:")));
            assert_eq!(ScimError::from(e).scim_type(), "invalidFilter");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let deep = format!("{}title pr{}", "(".repeat(65), ")".repeat(65));
        assert!(matches!(Filter::parse(&deep).unwrap_err().kind, FilterErrorKind::TooDeep(64)));
        let ok = format!("{}title pr{}", "(".repeat(64), ")".repeat(64));
        assert!(Filter::parse(&ok).is_ok());
        let nots = format!("{}title pr{}", "not (".repeat(100_000), ")".repeat(100_000));
        let limits = Limits { max_len: usize::MAX, max_depth: usize::MAX };
        assert!(matches!(
            Filter::parse_with(&nots, &limits).unwrap_err().kind,
            FilterErrorKind::TooDeep(MAX_DEPTH_CEILING)
        ));
        let long = "a pr or ".repeat(3000) + "a pr";
        assert!(matches!(Filter::parse(&long).unwrap_err().kind, FilterErrorKind::TooLong { .. }));
        let wide = Filter::parse_with(&long, &limits).unwrap();
        assert_eq!(wide.disjuncts().len(), 3001);
    }

    /// Everything that walks the tree recursively stays within a small stack at the
    /// deepest nesting the parser accepts (the parser itself uses a heap stack).
    #[test]
    fn max_depth_fits_a_small_stack() {
        let d = MAX_DEPTH_CEILING;
        let src = format!(r#"{}emails[type eq "work" or not (value pr)]{}"#, "not (".repeat(d - 2), ")".repeat(d - 2));
        let worker = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let limits = Limits { max_len: usize::MAX, max_depth: d };
                let f = Filter::parse_with(&src, &limits).unwrap();
                let c = crate::scim::eval::CompiledFilter::compile(&f, &crate::scim::schema::USER).unwrap();
                let hit = c.matches(&serde_json::json!({"emails": [{"type": "work", "value": "a"}]}));
                assert_eq!(Filter::parse_with(&f.to_string(), &limits).unwrap(), f.clone());
                let mut n = 0;
                f.walk(&mut |_| n += 1);
                drop(f);
                (hit, n)
            })
            .unwrap();
        // 126 `not`s (even) around a matching value path, which nests two more levels.
        assert_eq!(worker.join().unwrap(), (true, 126 + 5));
    }
}
