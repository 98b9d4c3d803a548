//! The SOQL subset the Salesforce sandbox understands, parsed into a [`Query`]: `SELECT` a field
//! list or `COUNT()`, `FROM` one object, `WHERE` with `= != <> < <= > >= IN NOT IN LIKE`, `AND`,
//! `OR`, `NOT` and parentheses over string, number, boolean, `null`, date and date-time literals,
//! `ORDER BY` fields `ASC|DESC [NULLS FIRST|LAST]`, `LIMIT` and `OFFSET`. Keywords are
//! case-insensitive. Anything else is an error message for a `MALFORMED_QUERY` answer; no input
//! panics. Field and object names are checked later, against the records.

use chrono::{DateTime, NaiveDate};

/// A literal in a condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    /// Epoch milliseconds; `true` for a date without a time.
    Time(i64, bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    In,
    NotIn,
}

/// A `WHERE` condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `field op value`; `IN` and `NOT IN` have several values.
    Compare {
        field: String,
        op: Op,
        values: Vec<Literal>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub field: String,
    pub descending: bool,
    pub nulls_last: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Select {
    Count,
    Fields(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub select: Select,
    pub object: String,
    pub filter: Option<Expr>,
    pub order: Vec<Order>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Lit(Literal),
    Sym(&'static str),
}

/// Parses one query; the error is a message for `MALFORMED_QUERY`.
pub fn parse(text: &str) -> Result<Query, String> {
    let tokens = lex(text)?;
    let mut p = Parser { tokens, at: 0 };
    let query = p.query()?;
    match p.tokens.get(p.at) {
        None => Ok(query),
        Some(_) => Err(p.unexpected()),
    }
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (c, column) = (chars[i], i + 1);
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated string starting at Row:1:Column:{column}")),
                    Some('\'') => break,
                    Some('\\') => {
                        let escaped = chars
                            .get(i + 1)
                            .ok_or_else(|| format!("unterminated string starting at Row:1:Column:{column}"))?;
                        s.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => *other,
                        });
                        i += 2;
                    }
                    Some(other) => {
                        s.push(*other);
                        i += 1;
                    }
                }
            }
            i += 1;
            out.push((Tok::Str(s), column));
        } else if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) {
            let start = i;
            i += 1;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let literal = number_or_time(&word).ok_or_else(|| format!("unexpected token: '{word}' at Row:1:Column:{column}"))?;
            out.push((Tok::Lit(literal), column));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while chars.get(i).is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.')) {
                i += 1;
            }
            out.push((Tok::Word(chars[start..i].iter().collect()), column));
        } else {
            let (sym, len) = match (c, next) {
                ('!', Some('=')) => ("!=", 2),
                ('<', Some('>')) => ("!=", 2),
                ('<', Some('=')) => ("<=", 2),
                ('>', Some('=')) => (">=", 2),
                ('<', _) => ("<", 1),
                ('>', _) => (">", 1),
                ('=', _) => ("=", 1),
                ('(', _) => ("(", 1),
                (')', _) => (")", 1),
                (',', _) => (",", 1),
                _ => return Err(format!("unexpected character '{c}' at Row:1:Column:{column}")),
            };
            out.push((Tok::Sym(sym), column));
            i += len;
        }
    }
    Ok(out)
}

/// A number, a date (`2026-11-20`) or a date-time (`2026-11-20T22:00:00Z`, `...+01:00`,
/// `...000+0000`).
fn number_or_time(word: &str) -> Option<Literal> {
    if word.contains('T') {
        let t = DateTime::parse_from_rfc3339(word)
            .or_else(|_| DateTime::parse_from_str(word, "%Y-%m-%dT%H:%M:%S%.f%z"))
            .ok()?;
        return Some(Literal::Time(t.timestamp_millis(), false));
    }
    if word.len() == 10 && word.as_bytes().get(4) == Some(&b'-') {
        let d = NaiveDate::parse_from_str(word, "%Y-%m-%d").ok()?;
        return Some(Literal::Time(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis(), true));
    }
    word.parse::<f64>().ok().filter(|n| n.is_finite()).map(Literal::Num)
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn unexpected(&self) -> String {
        match self.tokens.get(self.at) {
            None => "unexpected end of query".to_string(),
            Some((tok, column)) => {
                let shown = match tok {
                    Tok::Word(w) => w.clone(),
                    Tok::Str(s) => format!("'{s}'"),
                    Tok::Lit(Literal::Num(n)) => n.to_string(),
                    Tok::Lit(_) => "literal".to_string(),
                    Tok::Sym(s) => s.to_string(),
                };
                format!("unexpected token: '{shown}' at Row:1:Column:{column}")
            }
        }
    }

    /// Whether the next token is keyword `word` (consumed if so).
    fn keyword(&mut self, word: &str) -> bool {
        let is = matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word));
        self.at += usize::from(is);
        is
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), String> {
        if self.keyword(word) { Ok(()) } else { Err(self.unexpected()) }
    }

    fn symbol(&mut self, sym: &str) -> bool {
        let is = matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym);
        self.at += usize::from(is);
        is
    }

    fn expect_symbol(&mut self, sym: &str) -> Result<(), String> {
        if self.symbol(sym) { Ok(()) } else { Err(self.unexpected()) }
    }

    /// A field or object name: a word that is not a keyword of the clause grammar.
    fn name(&mut self) -> Result<String, String> {
        const RESERVED: [&str; 14] = [
            "select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "limit", "offset", "null", "count",
        ];
        match self.peek() {
            Some(Tok::Word(w)) if !RESERVED.iter().any(|r| w.eq_ignore_ascii_case(r)) => {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn number(&mut self) -> Result<usize, String> {
        match self.peek() {
            Some(Tok::Lit(Literal::Num(n))) if *n >= 0.0 && n.fract() == 0.0 && *n <= u32::MAX as f64 => {
                let n = *n as usize;
                self.at += 1;
                Ok(n)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn query(&mut self) -> Result<Query, String> {
        self.expect_keyword("select")?;
        let select = if matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("count"))
            && self.tokens.get(self.at + 1).is_some_and(|(t, _)| *t == Tok::Sym("("))
        {
            self.at += 2;
            self.expect_symbol(")")?;
            Select::Count
        } else {
            let mut fields = vec![self.name()?];
            while self.symbol(",") {
                fields.push(self.name()?);
            }
            Select::Fields(fields)
        };
        self.expect_keyword("from")?;
        let object = self.name()?;
        let filter = if self.keyword("where") { Some(self.or()?) } else { None };
        let mut order = Vec::new();
        if self.keyword("order") {
            self.expect_keyword("by")?;
            loop {
                let field = self.name()?;
                let descending = if self.keyword("desc") {
                    true
                } else {
                    self.keyword("asc");
                    false
                };
                let mut nulls_last = descending;
                if self.keyword("nulls") {
                    nulls_last = if self.keyword("last") {
                        true
                    } else {
                        self.expect_keyword("first")?;
                        false
                    };
                }
                order.push(Order {
                    field,
                    descending,
                    nulls_last,
                });
                if !self.symbol(",") {
                    break;
                }
            }
        }
        let limit = if self.keyword("limit") { Some(self.number()?) } else { None };
        let offset = if self.keyword("offset") { Some(self.number()?) } else { None };
        Ok(Query {
            select,
            object,
            filter,
            order,
            limit,
            offset,
        })
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.and()?];
        while self.keyword("or") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::Or(parts) })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.not()?];
        while self.keyword("and") {
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::And(parts) })
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.symbol("(") {
            let inner = self.or()?;
            self.expect_symbol(")")?;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let field = self.name()?;
        let symbol = match self.peek() {
            Some(Tok::Sym(s)) => Some(*s),
            _ => None,
        };
        let op = match symbol {
            Some(s) => {
                let op = match s {
                    "=" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    _ => return Err(self.unexpected()),
                };
                self.at += 1;
                op
            }
            None if self.keyword("like") => Op::Like,
            None if self.keyword("in") => Op::In,
            None if self.keyword("not") => {
                self.expect_keyword("in")?;
                Op::NotIn
            }
            None => return Err(self.unexpected()),
        };
        let values = if matches!(op, Op::In | Op::NotIn) {
            self.expect_symbol("(")?;
            let mut values = vec![self.literal()?];
            while self.symbol(",") {
                values.push(self.literal()?);
            }
            self.expect_symbol(")")?;
            values
        } else {
            vec![self.literal()?]
        };
        if op == Op::Like && !matches!(values[0], Literal::Str(_)) {
            return Err(format!("LIKE on `{field}` needs a quoted pattern"));
        }
        Ok(Expr::Compare { field, op, values })
    }

    fn literal(&mut self) -> Result<Literal, String> {
        let literal = match self.peek() {
            Some(Tok::Str(s)) => Literal::Str(s.clone()),
            Some(Tok::Lit(l)) => l.clone(),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => return Err(self.unexpected()),
        };
        self.at += 1;
        Ok(literal)
    }
}

/// Whether `text` matches a `LIKE` pattern (`%` any run, `_` one character), ignoring case.
pub fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    // Classic wildcard matching with one backtrack point for the last `%`.
    let (mut ti, mut pi, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_subset() {
        let q = parse(
            "select Id, Email FROM Contact where (LastName = 'O\\'Brien' or Amount >= -2.5) AND IsDeleted = false \
             and SystemModstamp > 2026-11-20T22:00:00Z AND Id NOT IN ('a','b') ORDER BY LastModifiedDate DESC, Id LIMIT 10 OFFSET 5",
        )
        .unwrap();
        assert_eq!(q.select, Select::Fields(vec!["Id".into(), "Email".into()]));
        assert_eq!(q.object, "Contact");
        assert_eq!((q.limit, q.offset), (Some(10), Some(5)));
        assert_eq!(q.order.len(), 2);
        assert!(q.order[0].descending && q.order[0].nulls_last && !q.order[1].descending);
        let Some(Expr::And(parts)) = q.filter else { panic!("an AND") };
        assert_eq!(parts.len(), 4);
        assert!(matches!(&parts[0], Expr::Or(o) if o.len() == 2));
        assert_eq!(
            parts[2],
            Expr::Compare {
                field: "SystemModstamp".into(),
                op: Op::Gt,
                values: vec![Literal::Time(1_795_212_000_000, false)]
            }
        );
        assert!(matches!(&parts[3], Expr::Compare { op: Op::NotIn, values, .. } if values.len() == 2));
        assert_eq!(parse("SELECT COUNT() FROM Account").unwrap().select, Select::Count);
        let dated =
            parse("SELECT Id FROM Opportunity WHERE CloseDate < 2026-01-31 AND LastModifiedDate >= 2024-03-01T10:00:00.000+0000").unwrap();
        assert!(dated.filter.is_some());
    }

    #[test]
    fn malformed_queries_are_errors_not_panics() {
        for bad in [
            "",
            "SELECT",
            "SELECT Id",
            "SELECT Id FRM Contact",
            "SELECT Id FROM Contact WHERE",
            "SELECT Id FROM Contact WHERE Name = 'open",
            "SELECT Id FROM Contact WHERE Name LIKE 5",
            "SELECT Id FROM Contact WHERE (Name = 'a'",
            "SELECT Id FROM Contact LIMIT -1",
            "SELECT Id FROM Contact LIMIT 1.5",
            "SELECT Id FROM Contact WHERE Name = 'a' extra",
            "SELECT Id, FROM Contact",
            "SELECT Id FROM Contact WHERE Id IN ()",
            "SELECT Id FROM Contact WHERE CreatedDate > 2026-13-45T99:00:00Z",
            "SELECT Id FROM Contact WHERE Name ~ 'x'",
            "SELECT Id FROM Contact WHERE Name = 'a\\",
            "SELECT COUNT( FROM Contact",
        ] {
            assert!(parse(bad).is_err(), "`{bad}` parsed");
        }
        assert!(parse("SELECT Id FRM Contact").unwrap_err().contains("FRM"));
    }

    #[test]
    fn like_patterns() {
        assert!(like("Ana.Smith@example.com", "%@EXAMPLE.com"));
        assert!(like("abc", "a_c") && like("abc", "%") && like("", "%"));
        assert!(!like("abc", "a_") && !like("abc", "%d%"));
        assert!(like("aXbXc", "a%b%c"));
    }
}
