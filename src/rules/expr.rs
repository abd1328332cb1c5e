//! Condition expressions for rule files.
//!
//! A rule says *when* to reach out to a customer with a small boolean expression over named
//! features of the event, the customer profile and derived signals:
//!
//! ```text
//! event.amount_eur > 500 && customer.segment == 'mass' && !customer.trusted_country
//! ```
//!
//! [`Condition::compile`] parses such a string once, resolves every feature name through a
//! [`Schema`] and type-checks the whole expression. A rule with a typo or with a string compared
//! to a number is therefore rejected when the rule file is loaded, with the column of the
//! mistake, instead of silently never firing in production. The result is a small typed tree:
//! [`Condition::eval`] runs on the per-event hot path and does no parsing, no allocation and no
//! name lookup.
//!
//! # Grammar
//!
//! From lowest to highest precedence (whitespace, including newlines, is free between tokens):
//!
//! ```text
//! condition  = or
//! or         = and (("||" | "or") and)*
//! and        = not (("&&" | "and") not)*
//! not        = ("!" | "not")* comparison
//! comparison = sum [ ("==" | "!=" | "<" | "<=" | ">" | ">=") sum
//!                  | "in" list | "not" "in" list ]
//! sum        = product (("+" | "-") product)*
//! product    = unary (("*" | "/") unary)*
//! unary      = "-"* atom
//! atom       = number | string | "true" | "false" | name | "(" or ")"
//! list       = "[" literal ("," literal)* [","] "]"
//! literal    = ["-"] number | string | "true" | "false"
//! number     = digit (digit | "_")* ["." digit (digit | "_")*]      e.g. 42, 3.5, 1_000
//! string     = "'" (any char but ')* "'" | '"' (any char but ")* '"'  (no escapes)
//! name       = word ("." word)*            word = [a-z_][a-z0-9_]*, e.g. event.amount_eur
//! ```
//!
//! `and`, `or`, `not`, `in`, `true` and `false` are keywords, not names (names that merely start
//! with one, such as `orders.count` or `notification.sent`, are fine).
//! Comparisons do not chain: `a < b < c` is an error rather than a surprise. Note that `!` binds
//! looser than comparisons, so `!a == b` means `!(a == b)`.
//!
//! # Types
//!
//! Every feature has a [`Type`] from the schema. `==`/`!=` need both sides of the same type,
//! `< <= > >=` and arithmetic need numbers, `&& || !` need booleans, the items of an `in` list
//! must have the type of its left side, and the whole condition must be a boolean.
//!
//! # Missing values
//!
//! A feature may be [`Value::Missing`] for an event (say, no profile yet). Evaluation uses
//! three-valued (Kleene) logic: comparisons and arithmetic on a missing value are *unknown*,
//! `false && unknown` is false, `true || unknown` is true, `!unknown` is unknown, and
//! [`Condition::eval`] fires only on a definite true. Division by zero, a NaN, or a value whose
//! runtime type disagrees with the schema are treated as missing too: an alert must never fire
//! because of data we could not interpret.

use winnow::ascii::multispace0;
use winnow::combinator::{alt, opt, peek, preceded, repeat};
use winnow::error::{ErrMode, ModalResult, ParserError};
use winnow::stream::{Location, Stream};
use winnow::token::{one_of, take_till, take_while};
use winnow::{LocatingSlice, Parser};

use crate::vocab::Type;

/// Index of a feature in the caller's schema, resolved at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeatureId(pub u16);

/// A feature value at evaluation time. `Missing` = not known for this event (e.g. no profile yet).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A number.
    Num(f64),
    /// A string borrowed from the caller.
    Str(&'a str),
    /// A boolean.
    Bool(bool),
    /// Not known for this event.
    Missing,
}

/// Resolves feature names (e.g. "event.amount_eur", "customer.segment", "signal.speed_kmh") at compile time.
pub trait Schema {
    /// The id and type of the feature called `name`, or `None` if there is no such feature.
    fn resolve(&self, name: &str) -> Option<(FeatureId, Type)>;
}

/// Supplies feature values at evaluation time.
pub trait Features {
    /// The value of feature `id` for the event being evaluated.
    fn get(&self, id: FeatureId) -> Value<'_>;
}

/// A compile error: byte offset into the source and a human-readable message
/// (e.g. "type mismatch: `event.country` is a string, compared with number 42", "unknown feature `event.amout`").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {}: {message}", offset + 1)]
pub struct ExprError {
    /// Byte offset of the offending text in the source.
    pub offset: usize,
    /// What is wrong, naming the offending text.
    pub message: String,
}

/// A compiled, type-checked boolean condition.
#[derive(Debug, Clone)]
pub struct Condition {
    source: Box<str>,
    root: BoolExpr,
    /// Features read by the condition, deduplicated, in order of first appearance.
    features: Vec<FeatureId>,
}

impl Condition {
    /// Parses and type-checks `src`, resolving feature names through `schema`. On failure, the
    /// first error (see [`Condition::compile_all`] for every one).
    pub fn compile(src: &str, schema: &dyn Schema) -> Result<Condition, ExprError> {
        Condition::compile_all(src, schema).map_err(|mut errors| errors.swap_remove(0))
    }

    /// Like [`Condition::compile`], but reports every error of the type check (unknown
    /// features, type mismatches), in the order of their offsets; never an empty list. A syntax
    /// error stops at the first, as the text after it cannot be read reliably.
    pub fn compile_all(src: &str, schema: &dyn Schema) -> Result<Condition, Vec<ExprError>> {
        let ast = parse(src).map_err(|e| vec![e])?;
        let mut compiler = Compiler { src, schema, features: Vec::new(), errors: Vec::new() };
        let lowered = compiler.lower(&ast);
        let mut errors = std::mem::take(&mut compiler.errors);
        let root = match lowered {
            Some(Typed::Bool(root)) if errors.is_empty() => Some(root),
            Some(Typed::Bool(_)) | None => None,
            Some(other) => {
                errors.push(error(
                    ast.start,
                    format!("condition must be true/false, found {}", compiler.object(&ast, other.ty())),
                ));
                None
            }
        };
        match root {
            Some(root) => Ok(Condition { source: src.into(), root, features: compiler.features }),
            None => {
                errors.sort_by_key(|e| e.offset);
                Err(errors)
            }
        }
    }

    /// Evaluates the condition for one event. Unknown (a missing value decided the outcome)
    /// counts as false: only a definite true fires.
    pub fn eval(&self, features: &dyn Features) -> bool {
        self.root.eval(features) == Some(true)
    }

    /// Every feature the condition reads (deduplicated), so callers can tell which features a rule needs.
    pub fn features(&self) -> Vec<FeatureId> {
        self.features.clone()
    }

    /// The source text the condition was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled tree. One enum per static type, so that evaluation never checks types or converts
// values: the type checker has already proven every combination valid. `None` is Kleene's
// "unknown".
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum NumExpr {
    Const(f64),
    Feature(FeatureId),
    Neg(Box<NumExpr>),
    Arith(ArithOp, Box<NumExpr>, Box<NumExpr>),
}

#[derive(Debug, Clone)]
enum StrExpr {
    Const(Box<str>),
    Feature(FeatureId),
}

#[derive(Debug, Clone)]
enum BoolExpr {
    Const(bool),
    Feature(FeatureId),
    Not(Box<BoolExpr>),
    /// An `&&` or `||` chain, flattened so long chains neither nest deeply nor recurse deeply.
    Logic(LogicOp, Box<[BoolExpr]>),
    /// `feature OP constant`, the most common comparison by far (constant moved to the right):
    /// one feature read and one compare, instead of walking two sub-trees.
    NumFeatureCmp(CmpOp, FeatureId, f64),
    NumCmp(CmpOp, Box<NumExpr>, Box<NumExpr>),
    /// `feature == 'constant'` (or `!=`), specialised like [`BoolExpr::NumFeatureCmp`].
    StrFeatureCmp(CmpOp, FeatureId, Box<str>),
    /// Only `==` and `!=`: the type checker rejects ordering on strings.
    StrCmp(CmpOp, StrExpr, StrExpr),
    /// Only `==` and `!=`: the type checker rejects ordering on booleans.
    BoolCmp(CmpOp, Box<BoolExpr>, Box<BoolExpr>),
    NumIn(Box<NumExpr>, Box<[f64]>),
    StrIn(StrExpr, Box<[Box<str>]>),
    BoolIn(Box<BoolExpr>, Box<[bool]>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogicOp {
    /// `&&` / `and`
    All,
    /// `||` / `or`
    Any,
}

impl ArithOp {
    /// `None` for a result we cannot trust (division by zero, NaN), which then reads as missing.
    fn apply(self, l: f64, r: f64) -> Option<f64> {
        let result = match self {
            ArithOp::Add => l + r,
            ArithOp::Sub => l - r,
            ArithOp::Mul => l * r,
            ArithOp::Div if r == 0.0 => return None,
            ArithOp::Div => l / r,
        };
        (!result.is_nan()).then_some(result)
    }

    fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

impl CmpOp {
    fn apply<T: PartialOrd + ?Sized>(self, l: &T, r: &T) -> bool {
        match self {
            CmpOp::Eq => l == r,
            CmpOp::Ne => l != r,
            CmpOp::Lt => l < r,
            CmpOp::Le => l <= r,
            CmpOp::Gt => l > r,
            CmpOp::Ge => l >= r,
        }
    }

    /// The operator that gives the same result with the operands swapped.
    fn mirror(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            CmpOp::Eq | CmpOp::Ne => self,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

impl LogicOp {
    /// Kleene `&&`/`||` over a chain: the absorbing value (false for `&&`, true for `||`)
    /// decides on its own even when other operands are unknown.
    fn eval(self, operands: &[BoolExpr], features: &dyn Features) -> Option<bool> {
        let absorbing = self == LogicOp::Any;
        let mut unknown = false;
        for operand in operands {
            match operand.eval(features) {
                Some(value) if value == absorbing => return Some(absorbing),
                Some(_) => {}
                None => unknown = true,
            }
        }
        (!unknown).then_some(!absorbing)
    }
}

/// A numeric feature; anything else (missing, NaN, a value of the wrong type) is unknown.
fn num_feature(features: &dyn Features, id: FeatureId) -> Option<f64> {
    match features.get(id) {
        Value::Num(x) if !x.is_nan() => Some(x),
        _ => None,
    }
}

/// A string feature; anything else (missing, a value of the wrong type) is unknown.
fn str_feature(features: &dyn Features, id: FeatureId) -> Option<&str> {
    match features.get(id) {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

impl NumExpr {
    fn eval(&self, features: &dyn Features) -> Option<f64> {
        match self {
            NumExpr::Const(x) => Some(*x),
            NumExpr::Feature(id) => num_feature(features, *id),
            NumExpr::Neg(e) => e.eval(features).map(|x| -x),
            NumExpr::Arith(op, l, r) => op.apply(l.eval(features)?, r.eval(features)?),
        }
    }

    /// Folds `-literal` so that negative literals cost nothing at evaluation time.
    fn neg(self) -> NumExpr {
        match self {
            NumExpr::Const(x) => NumExpr::Const(-x),
            e => NumExpr::Neg(Box::new(e)),
        }
    }

    /// Folds arithmetic on two constants (e.g. `3 * 1_000`). A constant division by zero is left
    /// in place so that it evaluates to unknown like any other division by zero.
    fn arith(op: ArithOp, l: NumExpr, r: NumExpr) -> NumExpr {
        if let (NumExpr::Const(a), NumExpr::Const(b)) = (&l, &r) {
            if let Some(folded) = op.apply(*a, *b) {
                return NumExpr::Const(folded);
            }
        }
        NumExpr::Arith(op, Box::new(l), Box::new(r))
    }
}

impl StrExpr {
    fn eval<'v>(&'v self, features: &'v dyn Features) -> Option<&'v str> {
        match self {
            StrExpr::Const(s) => Some(s),
            StrExpr::Feature(id) => str_feature(features, *id),
        }
    }
}

/// Builds a numeric comparison, specialising `feature OP constant`.
fn num_cmp(op: CmpOp, l: NumExpr, r: NumExpr) -> BoolExpr {
    match (l, r) {
        (NumExpr::Feature(id), NumExpr::Const(c)) => BoolExpr::NumFeatureCmp(op, id, c),
        (NumExpr::Const(c), NumExpr::Feature(id)) => BoolExpr::NumFeatureCmp(op.mirror(), id, c),
        (l, r) => BoolExpr::NumCmp(op, Box::new(l), Box::new(r)),
    }
}

/// Builds a string (in)equality, specialising `feature == 'constant'`.
fn str_cmp(op: CmpOp, l: StrExpr, r: StrExpr) -> BoolExpr {
    match (l, r) {
        (StrExpr::Feature(id), StrExpr::Const(c)) | (StrExpr::Const(c), StrExpr::Feature(id)) => {
            BoolExpr::StrFeatureCmp(op, id, c)
        }
        (l, r) => BoolExpr::StrCmp(op, l, r),
    }
}

impl BoolExpr {
    fn eval(&self, features: &dyn Features) -> Option<bool> {
        match self {
            BoolExpr::Const(b) => Some(*b),
            BoolExpr::Feature(id) => match features.get(*id) {
                Value::Bool(b) => Some(b),
                _ => None,
            },
            BoolExpr::Not(e) => e.eval(features).map(|b| !b),
            BoolExpr::Logic(op, operands) => op.eval(operands, features),
            BoolExpr::NumFeatureCmp(op, id, c) => Some(op.apply(&num_feature(features, *id)?, c)),
            BoolExpr::NumCmp(op, l, r) => Some(op.apply(&l.eval(features)?, &r.eval(features)?)),
            BoolExpr::StrFeatureCmp(op, id, c) => Some(op.apply(str_feature(features, *id)?, c)),
            BoolExpr::StrCmp(op, l, r) => Some(op.apply(l.eval(features)?, r.eval(features)?)),
            BoolExpr::BoolCmp(op, l, r) => Some(op.apply(&l.eval(features)?, &r.eval(features)?)),
            BoolExpr::NumIn(e, list) => {
                let x = e.eval(features)?;
                Some(list.contains(&x))
            }
            BoolExpr::StrIn(e, list) => {
                let s = e.eval(features)?;
                Some(list.iter().any(|item| **item == *s))
            }
            BoolExpr::BoolIn(e, list) => {
                let b = e.eval(features)?;
                Some(list.contains(&b))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax tree: what the parser produces, with byte spans so the type checker can quote the
// offending text. It borrows from the source and lives only during `compile`.
// ---------------------------------------------------------------------------------------------

/// Deeper nesting is rejected: the parser, the type checker and the evaluator all recurse, and a
/// rule file must not be able to overflow the stack. Real conditions are a few levels deep.
const MAX_DEPTH: usize = 64;

#[derive(Debug)]
struct Node<'s> {
    kind: Kind<'s>,
    /// Byte span of the node's text in the source (parentheses included).
    start: usize,
    end: usize,
    /// Height of the subtree, bounded by [`MAX_DEPTH`].
    depth: usize,
}

#[derive(Debug)]
enum Kind<'s> {
    Num(f64),
    /// A string literal's content, without the quotes.
    Str(&'s str),
    Bool(bool),
    Name(&'s str),
    Neg(Box<Node<'s>>),
    Not {
        /// `!` or `not`, as written, for error messages.
        op: &'s str,
        operand: Box<Node<'s>>,
    },
    Logic {
        op: LogicOp,
        /// The operators as written (`&&` or `and`), one fewer than the operands.
        op_texts: Vec<&'s str>,
        operands: Vec<Node<'s>>,
    },
    Arith {
        op: ArithOp,
        lhs: Box<Node<'s>>,
        rhs: Box<Node<'s>>,
    },
    Compare {
        op: CmpOp,
        lhs: Box<Node<'s>>,
        rhs: Box<Node<'s>>,
    },
    In {
        lhs: Box<Node<'s>>,
        /// Literal nodes only (`Num`, `Str` or `Bool`).
        items: Vec<Node<'s>>,
        negated: bool,
    },
}

impl<'s> Node<'s> {
    fn leaf(kind: Kind<'s>, start: usize, end: usize) -> Node<'s> {
        Node { kind, start, end, depth: 1 }
    }

    /// Builds an inner node, refusing trees deeper than [`MAX_DEPTH`].
    fn new(kind: Kind<'s>, start: usize, end: usize) -> PResult<Node<'s>> {
        let children = match &kind {
            Kind::Num(_) | Kind::Str(_) | Kind::Bool(_) | Kind::Name(_) => 0,
            Kind::Neg(operand) | Kind::Not { operand, .. } => operand.depth,
            Kind::Logic { operands, .. } => operands.iter().map(|n| n.depth).max().unwrap_or(0),
            Kind::Arith { lhs, rhs, .. } | Kind::Compare { lhs, rhs, .. } => lhs.depth.max(rhs.depth),
            Kind::In { lhs, .. } => lhs.depth,
        };
        if children >= MAX_DEPTH {
            return Err(too_deep(start));
        }
        Ok(Node { kind, start, end, depth: children + 1 })
    }

    fn literal_type(&self) -> Option<Type> {
        match self.kind {
            Kind::Num(_) => Some(Type::Num),
            Kind::Str(_) => Some(Type::Str),
            Kind::Bool(_) => Some(Type::Bool),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parser (winnow). The grammar is LL(1) apart from `not in`, so each function looks at the next
// token, commits, and reports a precise error itself (as `ErrMode::Cut`) when what follows is
// wrong. Backtracking errors only occur inside `opt`/`alt` while probing for an optional token.
// ---------------------------------------------------------------------------------------------

type Input<'s> = LocatingSlice<&'s str>;
type PResult<T> = ModalResult<T, SyntaxError>;

/// The parser's error: `None` while probing alternatives, `Some` once a definite, user-facing
/// error has been found.
#[derive(Debug)]
struct SyntaxError(Option<ExprError>);

impl<I: Stream> ParserError<I> for SyntaxError {
    type Inner = Self;

    fn from_input(_input: &I) -> Self {
        SyntaxError(None)
    }

    fn into_inner(self) -> Result<Self, Self> {
        Ok(self)
    }
}

fn error(offset: usize, message: impl Into<String>) -> ExprError {
    ExprError { offset, message: message.into() }
}

/// A committed syntax error: stops the parse with this message.
fn cut(offset: usize, message: impl Into<String>) -> ErrMode<SyntaxError> {
    ErrMode::Cut(SyntaxError(Some(error(offset, message))))
}

fn too_deep(offset: usize) -> ErrMode<SyntaxError> {
    cut(offset, format!("expression is nested too deeply (more than {MAX_DEPTH} levels)"))
}

fn parse(src: &str) -> Result<Node<'_>, ExprError> {
    if src.trim().is_empty() {
        return Err(error(0, "empty condition"));
    }
    let mut input = Input::new(src);
    match condition(&mut input) {
        Ok(node) => Ok(node),
        Err(ErrMode::Cut(SyntaxError(Some(e))) | ErrMode::Backtrack(SyntaxError(Some(e)))) => Err(e),
        // Every failure path above reports its own message; this is a safety net.
        Err(_) => Err(error(input.current_token_start(), format!("unexpected {}", found(&input)))),
    }
}

/// The whole source: one expression and nothing after it.
fn condition<'s>(i: &mut Input<'s>) -> PResult<Node<'s>> {
    let node = or_expr(i, 0)?;
    ws(i)?;
    if !i.is_empty() {
        let message = hint(i).unwrap_or_else(|| match i.chars().next() {
            Some(')') => "unmatched `)`".to_owned(),
            _ => format!("unexpected {}", found(i)),
        });
        return Err(cut(i.current_token_start(), message));
    }
    Ok(node)
}

/// Position of the next token, as a byte offset into the source.
fn pos(i: &Input<'_>) -> usize {
    i.current_token_start()
}

fn ws(i: &mut Input<'_>) -> PResult<()> {
    multispace0.void().parse_next(i)
}

/// Describes the next token for an error message, e.g. "`)`" or "end of input".
fn found(rest: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    match rest.chars().next() {
        None => "end of input".to_owned(),
        Some(c) if is_word(c) => {
            let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
            format!("`{}`", &rest[..end])
        }
        Some(c) => format!("`{c}`"),
    }
}

/// Targeted advice for operators people bring from other languages.
fn hint(rest: &str) -> Option<String> {
    let message = if rest.starts_with('=') && !rest.starts_with("==") {
        "`=` is not an operator: use `==` to compare"
    } else if rest.starts_with('&') && !rest.starts_with("&&") {
        "`&` is not an operator: use `&&` (or `and`)"
    } else if rest.starts_with('|') && !rest.starts_with("||") {
        "`|` is not an operator: use `||` (or `or`)"
    } else {
        return None;
    };
    Some(message.to_owned())
}

/// `[a-z_][a-z0-9_]*`: one segment of a name, or a keyword.
fn word<'s>(i: &mut Input<'s>) -> PResult<&'s str> {
    (
        one_of(|c: char| c.is_ascii_lowercase() || c == '_'),
        take_while(0.., |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
    )
        .take()
        .parse_next(i)
}

/// A keyword as a whole word, so `order_id` is a name and not `or` followed by `der_id`.
fn keyword<'s>(kw: &'static str) -> impl Parser<Input<'s>, &'s str, ErrMode<SyntaxError>> {
    word.verify(move |w: &str| w == kw)
}

fn or_expr<'s>(i: &mut Input<'s>, nesting: usize) -> PResult<Node<'s>> {
    logic_chain(i, nesting, LogicOp::Any, ("||", "or"), and_expr)
}

fn and_expr<'s>(i: &mut Input<'s>, nesting: usize) -> PResult<Node<'s>> {
    logic_chain(i, nesting, LogicOp::All, ("&&", "and"), not_expr)
}

/// `operand (op operand)*`, collected into one n-ary node.
fn logic_chain<'s>(
    i: &mut Input<'s>,
    nesting: usize,
    op: LogicOp,
    (symbol, word): (&'static str, &'static str),
    operand: fn(&mut Input<'s>, usize) -> PResult<Node<'s>>,
) -> PResult<Node<'s>> {
    let mut operands = vec![operand(i, nesting)?];
    let mut op_texts = Vec::new();
    loop {
        ws(i)?;
        let Some(text) = opt(alt((symbol, keyword(word)))).parse_next(i)? else {
            break;
        };
        op_texts.push(text);
        operands.push(operand(i, nesting)?);
    }
    if operands.len() == 1 {
        return Ok(operands.remove(0));
    }
    let (start, end) = (operands[0].start, operands[operands.len() - 1].end);
    let kind = Kind::Logic { op, op_texts, operands };
    Node::new(kind, start, end)
}

fn not_expr<'s>(i: &mut Input<'s>, nesting: usize) -> PResult<Node<'s>> {
    // Prefix operators are read in a loop, not by recursion, so `!!!!…` cannot exhaust the stack.
    let mut prefixes = Vec::new();
    loop {
        ws(i)?;
        let start = pos(i);
        match opt(alt(("!", keyword("not")))).parse_next(i)? {
            Some(op) => prefixes.push((start, op)),
            None => break,
        }
    }
    let mut node = comparison(i, nesting)?;
    for (start, op) in prefixes.into_iter().rev() {
        let end = node.end;
        let operand = Box::new(node);
        node = Node::new(Kind::Not { op, operand }, start, end)?;
    }
    Ok(node)
}

fn cmp_op(i: &mut Input<'_>) -> PResult<CmpOp> {
    // Two-character operators first, so `<=` is not read as `<` followed by `=`.
    alt((
        "==".value(CmpOp::Eq),
        "!=".value(CmpOp::Ne),
        "<=".value(CmpOp::Le),
        ">=".value(CmpOp::Ge),
        "<".value(CmpOp::Lt),
        ">".value(CmpOp::Gt),
    ))
    .parse_next(i)
}

/// `in` or `not in`; the output says whether the membership is negated.
fn membership(i: &mut Input<'_>) -> PResult<bool> {
    alt((keyword("in").value(false), (keyword("not"), ws, keyword("in")).value(true))).parse_next(i)
}

fn comparison<'s>(i: &mut Input<'s>, nesting: usize) -> PResult<Node<'s>> {
    let lhs = sum(i, nesting)?;
    ws(i)?;
    let node = if let Some(op) = opt(cmp_op).parse_next(i)? {
        let rhs = sum(i, nesting)?;
        let (start, end) = (lhs.start, rhs.end);
        let (lhs, rhs) = (Box::new(lhs), Box::new(rhs));
        Node::new(Kind::Compare { op, lhs, rhs }, start, end)?
    } else if let Some(negated) = opt(membership).parse_next(i)? {
        let (items, end) = list(i)?;
        let start = lhs.start;
        let lhs = Box::new(lhs);
        Node::new(Kind::In { lhs, items, negated }, start, end)?
    } else {
        return Ok(lhs);
    };
    ws(i)?;
    if opt(peek(alt((cmp_op.void(), membership.void())))).parse_next(i)?.is_some() {
        return Err(cut(pos(i), "comparisons cannot be chained: join them with `&&`, or add parentheses"));
    }
    Ok(node)
}

fn sum<'s>(i: &mut Input<'s>, nesting: usize) -> PResult<Node<'s>> {
    arith_chain(i, nesting, [('+', ArithOp::Add), ('-', ArithOp::Sub)], product)
}

fn product<'s>(i: &mut Input<'s>, nesting: usize) -> PResult<Node<'s>> {
    arith_chain(i, nesting, [('*', ArithOp::Mul), ('/', ArithOp::Div)], unary)
}

/// `operand (op operand)*`, left-associative.
fn arith_chain<'s>(
    i: &mut Input<'s>,
    nesting: usize,
    [(c1, op1), (c2, op2)]: [(char, ArithOp); 2],
    operand: fn(&mut Input<'s>, usize) -> PResult<Node<'s>>,
) -> PResult<Node<'s>> {
    let mut lhs = operand(i, nesting)?;
    loop {
        ws(i)?;
        let Some(op) = opt(alt((c1.value(op1), c2.value(op2)))).parse_next(i)? else {
            return Ok(lhs);
        };
        let rhs = operand(i, nesting)?;
        let (start, end) = (lhs.start, rhs.end);
        let (lhs_box, rhs) = (Box::new(lhs), Box::new(rhs));
        lhs = Node::new(Kind::Arith { op, lhs: lhs_box, rhs }, start, end)?;
    }
}

fn unary<'s>(i: &mut Input<'s>, nesting: usize) -> PResult<Node<'s>> {
    let mut minuses = Vec::new();
    loop {
        ws(i)?;
        let start = pos(i);
        match opt('-').parse_next(i)? {
            Some(_) => minuses.push(start),
            None => break,
        }
    }
    let mut node = atom(i, nesting)?;
    for start in minuses.into_iter().rev() {
        node = match node.kind {
            // A negative literal stays a literal, so messages can say "number -5".
            Kind::Num(x) => Node::leaf(Kind::Num(-x), start, node.end),
            _ => {
                let end = node.end;
                Node::new(Kind::Neg(Box::new(node)), start, end)?
            }
        };
    }
    Ok(node)
}

fn atom<'s>(i: &mut Input<'s>, nesting: usize) -> PResult<Node<'s>> {
    ws(i)?;
    let start = pos(i);
    let kind = match i.chars().next() {
        Some('0'..='9') => Kind::Num(number(i)?),
        Some('\'' | '"') => Kind::Str(string(i)?),
        Some('a'..='z' | '_') => match name(i)? {
            "true" => Kind::Bool(true),
            "false" => Kind::Bool(false),
            kw @ ("and" | "or" | "not" | "in") => {
                return Err(cut(start, format!("expected a value, found keyword `{kw}`")))
            }
            name => Kind::Name(name),
        },
        Some('(') => return parenthesized(i, nesting),
        Some(c) if c.is_ascii_uppercase() => {
            return Err(cut(start, format!("feature names and keywords are lowercase, found {}", found(i))))
        }
        _ => {
            let message = hint(i).unwrap_or_else(|| format!("expected a value, found {}", found(i)));
            return Err(cut(start, message));
        }
    };
    Ok(Node::leaf(kind, start, pos(i)))
}

fn parenthesized<'s>(i: &mut Input<'s>, nesting: usize) -> PResult<Node<'s>> {
    let open = pos(i);
    '('.parse_next(i)?;
    if nesting >= MAX_DEPTH {
        return Err(too_deep(open));
    }
    let mut inner = or_expr(i, nesting + 1)?;
    ws(i)?;
    if opt(')').parse_next(i)?.is_none() {
        let message = hint(i).unwrap_or_else(|| {
            format!("expected `)` to close the `(` at column {}, found {}", open + 1, found(i))
        });
        return Err(cut(pos(i), message));
    }
    // The span covers the parentheses so error messages quote what the user wrote.
    inner.start = open;
    inner.end = pos(i);
    Ok(inner)
}

fn digits(i: &mut Input<'_>) -> PResult<()> {
    (one_of(|c: char| c.is_ascii_digit()), take_while(0.., |c: char| c.is_ascii_digit() || c == '_'))
        .void()
        .parse_next(i)
}

/// `42`, `3.5`, `1_000`. No sign (unary minus handles it) and no exponent.
fn number(i: &mut Input<'_>) -> PResult<f64> {
    let start = pos(i);
    let text = (digits, opt(('.', digits))).take().parse_next(i)?;
    match text.replace('_', "").parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(cut(start, format!("number `{text}` is out of range"))),
    }
}

/// A string in single or double quotes. There are no escapes: to put one kind of quote in a
/// string, delimit it with the other (`"O'Brien"`).
fn string<'s>(i: &mut Input<'s>) -> PResult<&'s str> {
    let start = pos(i);
    let quote = one_of(['\'', '"']).parse_next(i)?;
    let body = take_till(0.., quote).parse_next(i)?;
    if opt(quote).parse_next(i)?.is_none() {
        return Err(cut(start, format!("unterminated string: missing closing {quote}")));
    }
    Ok(body)
}

/// A dotted name such as `event.amount_eur` (or a keyword, which the caller sorts out).
fn name<'s>(i: &mut Input<'s>) -> PResult<&'s str> {
    fn segment<'s>(i: &mut Input<'s>) -> PResult<&'s str> {
        let start = pos(i);
        word.parse_next(i).map_err(|_| cut(start, format!("expected a name after `.`, found {}", found(i))))
    }
    (word, repeat::<_, _, (), _, _>(0.., preceded('.', segment))).take().parse_next(i)
}

/// `[literal, ...]` after `in`; returns the items and the end offset of the list.
fn list<'s>(i: &mut Input<'s>) -> PResult<(Vec<Node<'s>>, usize)> {
    ws(i)?;
    let open = pos(i);
    if opt('[').parse_next(i)?.is_none() {
        return Err(cut(open, format!("expected `[` to start a list after `in`, found {}", found(i))));
    }
    let mut items = Vec::new();
    loop {
        ws(i)?;
        if opt(']').parse_next(i)?.is_some() {
            break;
        }
        items.push(list_item(i)?);
        ws(i)?;
        // A trailing comma is fine: long lists are often written one item per line.
        if opt(',').parse_next(i)?.is_none() {
            if opt(']').parse_next(i)?.is_some() {
                break;
            }
            return Err(cut(
                pos(i),
                format!("expected `,` or `]` in the list at column {}, found {}", open + 1, found(i)),
            ));
        }
    }
    if items.is_empty() {
        return Err(cut(open, "empty list: `in []` can never match"));
    }
    Ok((items, pos(i)))
}

fn list_item<'s>(i: &mut Input<'s>) -> PResult<Node<'s>> {
    let start = pos(i);
    let negative = opt('-').parse_next(i)?.is_some();
    ws(i)?;
    let kind = match i.chars().next() {
        Some('0'..='9') => {
            let x = number(i)?;
            Kind::Num(if negative { -x } else { x })
        }
        Some('\'' | '"') if !negative => Kind::Str(string(i)?),
        Some('t' | 'f') if !negative => match opt(alt((keyword("true"), keyword("false")))).parse_next(i)? {
            Some(b) => Kind::Bool(b == "true"),
            None => return Err(not_a_literal(i)),
        },
        _ => return Err(not_a_literal(i)),
    };
    Ok(Node::leaf(kind, start, pos(i)))
}

fn not_a_literal(i: &Input<'_>) -> ErrMode<SyntaxError> {
    cut(pos(i), format!("list items must be literal numbers, strings or true/false, found {}", found(i)))
}

// ---------------------------------------------------------------------------------------------
// Type checking: turns the syntax tree into the typed tree, resolving names on the way.
// ---------------------------------------------------------------------------------------------

/// A lowered sub-expression, tagged with its static type.
enum Typed {
    Num(NumExpr),
    Str(StrExpr),
    Bool(BoolExpr),
}

impl Typed {
    fn ty(&self) -> Type {
        match self {
            Typed::Num(_) => Type::Num,
            Typed::Str(_) => Type::Str,
            Typed::Bool(_) => Type::Bool,
        }
    }
}

fn type_name(ty: Type) -> &'static str {
    match ty {
        Type::Num => "number",
        Type::Str => "string",
        Type::Bool => "boolean",
    }
}

struct Compiler<'a> {
    src: &'a str,
    schema: &'a dyn Schema,
    /// Features resolved so far, deduplicated, in order of first appearance.
    features: Vec<FeatureId>,
    /// Every error found so far. A part that failed lowers to `None`, and what contains it
    /// reports nothing more about it, so one mistake is one error, and two are two.
    errors: Vec<ExprError>,
}

impl Compiler<'_> {
    fn lower(&mut self, node: &Node<'_>) -> Option<Typed> {
        Some(match &node.kind {
            Kind::Num(x) => Typed::Num(NumExpr::Const(*x)),
            Kind::Str(s) => Typed::Str(StrExpr::Const((*s).into())),
            Kind::Bool(b) => Typed::Bool(BoolExpr::Const(*b)),
            Kind::Name(name) => self.feature(name, node.start)?,
            Kind::Neg(operand) => Typed::Num(self.num(operand, "-", "a number")?.neg()),
            Kind::Not { op, operand } => {
                let operand = self.boolean(operand, op, "a true/false value")?;
                Typed::Bool(BoolExpr::Not(Box::new(operand)))
            }
            Kind::Logic { op, op_texts, operands } => {
                let mut lowered = Vec::with_capacity(operands.len());
                let mut failed = false;
                for (k, operand) in operands.iter().enumerate() {
                    let op_text = op_texts[k.saturating_sub(1)];
                    // Every operand is checked, even after one failed.
                    match self.boolean(operand, op_text, "true/false values") {
                        None => failed = true,
                        // `(a && b) && c` is the same chain as `a && b && c`.
                        Some(BoolExpr::Logic(inner_op, inner)) if inner_op == *op => {
                            lowered.extend(inner.into_vec());
                        }
                        Some(e) => lowered.push(e),
                    }
                }
                if failed {
                    return None;
                }
                Typed::Bool(BoolExpr::Logic(*op, lowered.into_boxed_slice()))
            }
            Kind::Arith { op, lhs, rhs } => {
                let l = self.num(lhs, op.symbol(), "numbers");
                let r = self.num(rhs, op.symbol(), "numbers");
                Typed::Num(NumExpr::arith(*op, l?, r?))
            }
            Kind::Compare { op, lhs, rhs } => Typed::Bool(self.compare(*op, lhs, rhs)?),
            Kind::In { lhs, items, negated } => {
                let membership = self.membership(lhs, items)?;
                Typed::Bool(if *negated { BoolExpr::Not(Box::new(membership)) } else { membership })
            }
        })
    }

    fn fail<T>(&mut self, e: ExprError) -> Option<T> {
        self.errors.push(e);
        None
    }

    fn feature(&mut self, name: &str, offset: usize) -> Option<Typed> {
        let Some((id, ty)) = self.schema.resolve(name) else {
            return self.fail(error(offset, format!("unknown feature `{name}`")));
        };
        if !self.features.contains(&id) {
            self.features.push(id);
        }
        Some(match ty {
            Type::Num => Typed::Num(NumExpr::Feature(id)),
            Type::Str => Typed::Str(StrExpr::Feature(id)),
            Type::Bool => Typed::Bool(BoolExpr::Feature(id)),
        })
    }

    fn compare(&mut self, op: CmpOp, lhs: &Node<'_>, rhs: &Node<'_>) -> Option<BoolExpr> {
        if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            let l = self.num(lhs, op.symbol(), "numbers");
            let r = self.num(rhs, op.symbol(), "numbers");
            return Some(num_cmp(op, l?, r?));
        }
        let (l, r) = (self.lower(lhs), self.lower(rhs));
        Some(match (l?, r?) {
            (Typed::Num(l), Typed::Num(r)) => num_cmp(op, l, r),
            (Typed::Str(l), Typed::Str(r)) => str_cmp(op, l, r),
            (Typed::Bool(l), Typed::Bool(r)) => BoolExpr::BoolCmp(op, Box::new(l), Box::new(r)),
            (l, r) => {
                let message = format!(
                    "type mismatch: {}, compared with {}",
                    self.subject(lhs, l.ty()),
                    self.object(rhs, r.ty())
                );
                return self.fail(error(lhs.start, message));
            }
        })
    }

    fn membership(&mut self, lhs: &Node<'_>, items: &[Node<'_>]) -> Option<BoolExpr> {
        let lowered = self.lower(lhs)?;
        let ty = lowered.ty();
        for item in items {
            let item_ty = item.literal_type().unwrap_or(ty);
            if item_ty != ty {
                let message = format!(
                    "type mismatch: {}, but list item {} is a {}",
                    self.subject(lhs, ty),
                    self.text(item),
                    type_name(item_ty)
                );
                return self.fail(error(item.start, message));
            }
        }
        // The lists are built once here, so evaluation is a plain scan.
        Some(match lowered {
            Typed::Num(e) => BoolExpr::NumIn(
                Box::new(e),
                items
                    .iter()
                    .filter_map(|n| match n.kind {
                        Kind::Num(x) => Some(x),
                        _ => None,
                    })
                    .collect(),
            ),
            Typed::Str(e) => BoolExpr::StrIn(
                e,
                items
                    .iter()
                    .filter_map(|n| match n.kind {
                        Kind::Str(s) => Some(s.into()),
                        _ => None,
                    })
                    .collect(),
            ),
            Typed::Bool(e) => BoolExpr::BoolIn(
                Box::new(e),
                items
                    .iter()
                    .filter_map(|n| match n.kind {
                        Kind::Bool(b) => Some(b),
                        _ => None,
                    })
                    .collect(),
            ),
        })
    }

    /// Lowers an operand that must be a number; `op` and `needs` complete the error message.
    fn num(&mut self, node: &Node<'_>, op: &str, needs: &str) -> Option<NumExpr> {
        match self.lower(node)? {
            Typed::Num(e) => Some(e),
            other => {
                let e = self.operand_error(node, other.ty(), op, needs);
                self.fail(e)
            }
        }
    }

    /// Lowers an operand that must be a boolean; `op` and `needs` complete the error message.
    fn boolean(&mut self, node: &Node<'_>, op: &str, needs: &str) -> Option<BoolExpr> {
        match self.lower(node)? {
            Typed::Bool(e) => Some(e),
            other => {
                let e = self.operand_error(node, other.ty(), op, needs);
                self.fail(e)
            }
        }
    }

    fn operand_error(&self, node: &Node<'_>, ty: Type, op: &str, needs: &str) -> ExprError {
        error(node.start, format!("type mismatch: {}, but `{op}` needs {needs}", self.subject(node, ty)))
    }

    fn text(&self, node: &Node<'_>) -> &str {
        &self.src[node.start..node.end]
    }

    /// "`event.country` is a string"
    fn subject(&self, node: &Node<'_>, ty: Type) -> String {
        format!("`{}` is a {}", self.text(node), type_name(ty))
    }

    /// "number 42" for a literal, "string `customer.segment`" for anything else.
    fn object(&self, node: &Node<'_>, ty: Type) -> String {
        if node.literal_type().is_some() {
            format!("{} {}", type_name(ty), self.text(node))
        } else {
            format!("{} `{}`", type_name(ty), self.text(node))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMOUNT: FeatureId = FeatureId(0);
    const COUNTRY: FeatureId = FeatureId(1);
    const SEGMENT: FeatureId = FeatureId(2);
    const TRUSTED: FeatureId = FeatureId(3);
    const SPEED: FeatureId = FeatureId(4);
    const NEW: FeatureId = FeatureId(5);
    const NIGHT: FeatureId = FeatureId(6);
    const NOTIFIED: FeatureId = FeatureId(7);
    const ORDERS: FeatureId = FeatureId(8);

    struct TestSchema;

    impl Schema for TestSchema {
        fn resolve(&self, name: &str) -> Option<(FeatureId, Type)> {
            Some(match name {
                "event.amount_eur" => (AMOUNT, Type::Num),
                "event.country" => (COUNTRY, Type::Str),
                "customer.segment" => (SEGMENT, Type::Str),
                "customer.trusted_country" => (TRUSTED, Type::Bool),
                "signal.speed_kmh" => (SPEED, Type::Num),
                "customer.is_new" => (NEW, Type::Bool),
                "signal.night" => (NIGHT, Type::Bool),
                // Names that start with keywords (`not`, `or`) must still be names.
                "notification.sent" => (NOTIFIED, Type::Bool),
                "orders.count_24h" => (ORDERS, Type::Num),
                _ => return None,
            })
        }
    }

    /// Feature values indexed by `FeatureId`.
    struct Row([Value<'static>; 9]);

    impl Features for Row {
        fn get(&self, id: FeatureId) -> Value<'_> {
            self.0[usize::from(id.0)]
        }
    }

    /// A typical event: 750 EUR from France, mass-market customer, untrusted country.
    fn row() -> Row {
        Row([
            Value::Num(750.0),
            Value::Str("FR"),
            Value::Str("mass"),
            Value::Bool(false),
            Value::Num(900.0),
            Value::Bool(true),
            Value::Bool(false),
            Value::Bool(false),
            Value::Num(3.0),
        ])
    }

    fn with(id: FeatureId, value: Value<'static>) -> Row {
        let mut r = row();
        r.0[usize::from(id.0)] = value;
        r
    }

    fn compile(src: &str) -> Condition {
        Condition::compile(src, &TestSchema).unwrap_or_else(|e| panic!("{src:?}: {e}"))
    }

    fn compile_err(src: &str) -> ExprError {
        match Condition::compile(src, &TestSchema) {
            Ok(c) => panic!("{src:?} compiled: {c:?}"),
            Err(e) => e,
        }
    }

    fn holds(src: &str) -> bool {
        compile(src).eval(&row())
    }

    /// The three-valued result, to tell unknown from false.
    fn eval3(src: &str, features: &Row) -> Option<bool> {
        compile(src).root.eval(features)
    }

    fn assert_err(src: &str, offset: usize, needles: &[&str]) {
        let e = compile_err(src);
        assert_eq!(e.offset, offset, "{src:?}: {e}");
        for needle in needles {
            assert!(e.message.contains(needle), "{src:?}: {e} lacks {needle:?}");
        }
    }

    #[test]
    fn every_type_error_is_reported_in_order() {
        let src = "event.amout > 1 || customer.segment == 42 || -signal.night > 0";
        let errors = Condition::compile_all(src, &TestSchema).unwrap_err();
        let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.offset, e.message.as_str())).collect();
        assert_eq!(found.len(), 3, "{found:#?}");
        assert_eq!(found[0], (0, "unknown feature `event.amout`"));
        assert_eq!(found[1].0, src.find("customer.segment").unwrap());
        assert!(found[1].1.starts_with("type mismatch: `customer.segment` is a string"), "{found:#?}");
        assert_eq!(found[2].0, src.find("signal.night").unwrap());
        // `compile` keeps the first, and a syntax error is still one error.
        assert_eq!(compile_err(src).message, "unknown feature `event.amout`");
        assert_eq!(Condition::compile_all("a.b > ", &TestSchema).unwrap_err().len(), 1);
        // No cascade: a failed operand does not also make its parent a mismatch.
        assert_eq!(Condition::compile_all("event.nope == 'x'", &TestSchema).unwrap_err().len(), 1);
    }

    #[test]
    fn the_example_rule() {
        let src = "event.amount_eur > 500 && customer.segment == 'mass' && !customer.trusted_country";
        let c = compile(src);
        assert!(c.eval(&row()));
        assert!(!c.eval(&with(TRUSTED, Value::Bool(true))));
        assert!(!c.eval(&with(AMOUNT, Value::Num(499.99))));
        assert!(!c.eval(&with(SEGMENT, Value::Str("private"))));
        assert_eq!(c.source(), src);
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // Read as `true || (false && false)`; `(true || false) && false` would be false.
        assert!(holds("true || false && false"));
        assert!(!holds("(true || false) && false"));
        assert!(holds("customer.is_new || signal.night && customer.trusted_country"));
        assert!(holds("signal.night && customer.trusted_country || customer.is_new"));
        assert!(holds("true or false and false"));
    }

    #[test]
    fn not_binds_looser_than_comparison_and_tighter_than_and() {
        assert!(holds("!event.amount_eur < 100"));
        assert!(holds("not event.country == 'DE'"));
        assert!(!holds("!customer.is_new && customer.is_new"));
        assert!(holds("!!customer.is_new"));
        assert!(holds("not not customer.is_new"));
        assert!(holds("!(customer.is_new && signal.night)"));
    }

    #[test]
    fn arithmetic_precedence_and_associativity() {
        assert!(holds("1 + 2 * 3 == 7"));
        assert!(holds("(1 + 2) * 3 == 9"));
        assert!(holds("10 - 4 - 3 == 3"));
        assert!(holds("8 / 4 / 2 == 1"));
        assert!(holds("-2 * 3 == -6"));
        assert!(holds("- -2 == 2"));
        assert!(holds("-(1 + 2) == -3"));
        assert!(holds("2 - -2 == 4"));
    }

    #[test]
    fn arithmetic_on_features() {
        assert!(holds("event.amount_eur * 2 > 1_000"));
        assert!(holds("event.amount_eur / orders.count_24h == 250"));
        assert!(holds("signal.speed_kmh - event.amount_eur == 150"));
        assert!(holds("-event.amount_eur < 0"));
        assert!(!holds("event.amount_eur + 1 <= 750"));
        assert!(holds("event.amount_eur >= 750 && event.amount_eur != 751"));
    }

    #[test]
    fn number_literals() {
        assert!(holds("1_000 == 1000"));
        assert!(holds("3.5 * 2 == 7"));
        assert!(holds("0.1 + 0.2 > 0.3")); // plain f64 semantics, no decimal magic
        assert!(holds("1_000.5 > 1000"));
    }

    #[test]
    fn constant_arithmetic_is_folded() {
        let c = compile("event.amount_eur > 3 * 1_000 - -5");
        match &c.root {
            BoolExpr::NumFeatureCmp(CmpOp::Gt, AMOUNT, x) => assert_eq!(*x, 3005.0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn strings_in_both_quote_styles() {
        assert!(holds("customer.segment == 'mass'"));
        assert!(holds("customer.segment == \"mass\""));
        assert!(holds("'O\"Brien' != \"O'Brien\""));
        assert!(holds("'' == \"\""));
        assert!(!holds("customer.segment == 'Mass'")); // exact, case-sensitive
        assert!(!holds("customer.segment == 'mass '"));
        assert!(holds("event.country != customer.segment"));
    }

    #[test]
    fn in_and_not_in() {
        assert!(holds("event.country in ['FR', \"DE\"]"));
        assert!(!holds("event.country not in ['FR', 'DE']"));
        assert!(holds("event.country not in ['NG', 'KP']"));
        assert!(holds("orders.count_24h in [1, 2, 3]"));
        assert!(holds("-orders.count_24h in [-3, 0]"));
        assert!(holds("event.amount_eur / 2 in [375]"));
        assert!(holds("customer.is_new in [true]"));
        assert!(holds("event.country in [\n  'FR',\n  'BE',\n]")); // trailing comma, newlines
        assert!(holds("!(event.country in ['DE'])"));
        assert!(holds("event.country in ['FR'] && orders.count_24h not in [0]"));
    }

    #[test]
    fn comparison_operators() {
        for (src, expected) in [
            ("orders.count_24h == 3", true),
            ("orders.count_24h != 3", false),
            ("orders.count_24h < 3", false),
            ("orders.count_24h <= 3", true),
            ("orders.count_24h > 3", false),
            ("orders.count_24h >= 3", true),
            ("customer.is_new == true", true),
            ("customer.is_new != signal.night", true),
            ("(1 < 2) == true", true),
            // Constant on the left: the operator is mirrored internally.
            ("3 == orders.count_24h", true),
            ("3 != orders.count_24h", false),
            ("3 > orders.count_24h", false),
            ("3 >= orders.count_24h", true),
            ("2 < orders.count_24h", true),
            ("4 <= orders.count_24h", false),
            ("'mass' == customer.segment", true),
            ("'mass' != customer.segment", false),
            // Neither side a plain feature: the general form.
            ("orders.count_24h + 0 < 3", false),
            ("orders.count_24h * 1 >= orders.count_24h", true),
            ("customer.segment == customer.segment", true),
        ] {
            assert_eq!(holds(src), expected, "{src}");
        }
    }

    #[test]
    fn bare_boolean_feature_and_literals_are_conditions() {
        assert!(holds("customer.is_new"));
        assert!(!holds("signal.night"));
        assert!(holds("true"));
        assert!(!holds("false"));
        assert!(holds("  (  customer.is_new )  "));
    }

    #[test]
    fn names_starting_with_keywords_are_names() {
        assert!(!holds("notification.sent"));
        assert!(holds("not notification.sent"));
        assert!(holds("orders.count_24h > 2 and not notification.sent"));
        assert!(holds("customer.is_new or notification.sent"));
    }

    #[test]
    fn whitespace_is_optional_and_free() {
        assert!(holds("event.amount_eur>500&&customer.segment=='mass'&&!customer.trusted_country"));
        assert!(holds("event.amount_eur\n  > 500\n\t&& customer.is_new"));
        assert!(holds("event.country in['FR']"));
    }

    #[test]
    fn type_mismatch_in_equality_names_both_sides() {
        assert_err(
            "event.country == 42",
            0,
            &["type mismatch: `event.country` is a string, compared with number 42"],
        );
        assert_err(
            "event.amount_eur > 1 && event.country == 42",
            24,
            &["`event.country` is a string", "number 42"],
        );
        assert_err("'FR' != event.amount_eur", 0, &["`'FR'` is a string", "number `event.amount_eur`"]);
        assert_err(
            "customer.trusted_country == 1",
            0,
            &["`customer.trusted_country` is a boolean", "number 1"],
        );
    }

    #[test]
    fn ordering_needs_numbers() {
        assert_err("event.country < 'FR'", 0, &["`event.country` is a string", "`<` needs numbers"]);
        assert_err("event.amount_eur >= 'high'", 20, &["`'high'` is a string", "`>=` needs numbers"]);
        assert_err("customer.is_new > false", 0, &["is a boolean", "`>`"]);
    }

    #[test]
    fn arithmetic_needs_numbers() {
        assert_err(
            "event.amount_eur + event.country > 1",
            19,
            &["`event.country` is a string", "`+` needs numbers"],
        );
        assert_err("customer.is_new * 2 > 1", 0, &["is a boolean", "`*`"]);
        assert_err("-event.country == 'FR'", 1, &["`event.country` is a string", "`-` needs a number"]);
    }

    #[test]
    fn logic_needs_booleans() {
        assert_err(
            "event.amount_eur && customer.is_new",
            0,
            &["`event.amount_eur` is a number", "`&&` needs true/false"],
        );
        assert_err(
            "customer.is_new or customer.segment",
            19,
            &["`customer.segment` is a string", "`or` needs true/false"],
        );
        assert_err(
            "!event.amount_eur",
            1,
            &["`event.amount_eur` is a number", "`!` needs a true/false value"],
        );
        assert_err("not 'x'", 4, &["`'x'` is a string", "`not`"]);
    }

    #[test]
    fn condition_must_be_boolean() {
        assert_err("event.amount_eur", 0, &["condition must be true/false, found number `event.amount_eur`"]);
        assert_err("  'mass'", 2, &["condition must be true/false, found string 'mass'"]);
        assert_err("(1 + 2)", 0, &["found number `(1 + 2)`"]);
    }

    #[test]
    fn in_list_items_must_match_the_left_side() {
        assert_err(
            "event.country in ['FR', 42]",
            24,
            &["`event.country` is a string", "list item 42 is a number"],
        );
        assert_err("orders.count_24h not in [1, 'two']", 28, &["is a number", "list item 'two' is a string"]);
        assert_err("customer.is_new in [1]", 20, &["is a boolean", "list item 1"]);
    }

    #[test]
    fn unknown_feature() {
        assert_err("event.amout > 5", 0, &["unknown feature `event.amout`"]);
        assert_err("customer.is_new && event.amout > 5", 19, &["unknown feature `event.amout`"]);
        assert_err("x", 0, &["unknown feature `x`"]);
    }

    #[test]
    fn syntax_errors_with_offsets() {
        assert_err("", 0, &["empty condition"]);
        assert_err("  \n ", 0, &["empty condition"]);
        assert_err("customer.is_new customer.is_new", 16, &["unexpected `customer.is_new`"]);
        assert_err("event.amount_eur > 500 )", 23, &["unmatched `)`"]);
        assert_err("(customer.is_new", 16, &["expected `)`", "column 1", "end of input"]);
        assert_err("((customer.is_new)", 18, &["expected `)`", "column 1"]);
        assert_err("(customer.is_new 5)", 17, &["expected `)`", "found `5`"]);
        assert_err("event.amount_eur >", 18, &["expected a value", "end of input"]);
        assert_err("event.amount_eur > )", 19, &["expected a value", "found `)`"]);
        assert_err("&& customer.is_new", 0, &["expected a value", "`&`"]);
        assert_err("customer.is_new && and", 19, &["found keyword `and`"]);
        assert_err("customer.segment == 'mass", 20, &["unterminated string"]);
        assert_err("customer.segment = 'mass'", 17, &["use `==`"]);
        assert_err("customer.is_new & signal.night", 16, &["use `&&`"]);
        assert_err("customer.is_new | signal.night", 16, &["use `||`"]);
        assert_err("(event.amount_eur = 1)", 18, &["use `==`"]);
        assert_err("1 < orders.count_24h < 5", 21, &["cannot be chained"]);
        assert_err("event.country in ['FR'] == true", 24, &["cannot be chained"]);
        assert_err("event.Amount > 1", 6, &["expected a name after `.`", "`Amount`"]);
        assert_err("event. > 1", 6, &["expected a name after `.`"]);
        assert_err("Event.amount > 1", 0, &["lowercase", "`Event.amount`"]);
        assert_err("event.amount_eur > 5e3", 20, &["unexpected `e3`"]);
        assert_err("event.amount_eur > 1.", 20, &["unexpected `.`"]);
        assert_err("event.amount_eur > €", 19, &["expected a value", "`€`"]);
    }

    #[test]
    fn list_syntax_errors() {
        assert_err("event.country in 'FR'", 17, &["expected `[`", "found `'`"]);
        assert_err("event.country in []", 17, &["empty list"]);
        assert_err("event.country in ['FR' 'DE']", 23, &["expected `,` or `]`", "column 18"]);
        assert_err("event.country in ['FR',", 23, &["list items must be literal", "end of input"]);
        assert_err(
            "event.country in [customer.segment]",
            18,
            &["list items must be literal", "`customer.segment`"],
        );
        assert_err("orders.count_24h in [-'x']", 22, &["list items must be literal"]);
        assert_err("event.country not ['FR']", 14, &["unexpected `not`"]);
    }

    #[test]
    fn error_display_uses_one_based_columns() {
        let e = compile_err("event.country == 42");
        assert_eq!(
            e.to_string(),
            "column 1: type mismatch: `event.country` is a string, compared with number 42"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}customer.is_new{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_err(&deep, MAX_DEPTH, &["nested too deeply"]);
        let nots = format!("{}customer.is_new", "!".repeat(10_000));
        assert!(compile_err(&nots).message.contains("nested too deeply"));
        let sum = format!("1{} > 0", " + 1".repeat(10_000));
        assert!(compile_err(&sum).message.contains("nested too deeply"));
        // Reasonable nesting is fine.
        assert!(holds(&format!("{}customer.is_new{}", "(".repeat(30), ")".repeat(30))));
    }

    #[test]
    fn long_logic_chains_are_flat() {
        let chain = vec!["customer.is_new"; 1_000].join(" && ");
        assert!(holds(&chain));
        let c = compile("(customer.is_new && signal.night) && (notification.sent && true)");
        match &c.root {
            BoolExpr::Logic(LogicOp::All, operands) => assert_eq!(operands.len(), 4),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_values_make_comparisons_unknown() {
        let missing = with(AMOUNT, Value::Missing);
        assert_eq!(eval3("event.amount_eur > 500", &missing), None);
        assert_eq!(eval3("event.amount_eur <= 500", &missing), None);
        assert_eq!(eval3("!(event.amount_eur > 500)", &missing), None);
        assert_eq!(eval3("event.amount_eur + 1 == 1", &missing), None);
        assert_eq!(eval3("500 < event.amount_eur", &missing), None);
        assert_eq!(eval3("event.amount_eur in [1, 2]", &missing), None);
        assert_eq!(eval3("event.amount_eur not in [1, 2]", &missing), None);
        assert!(!compile("event.amount_eur > 500").eval(&missing));
        assert!(!compile("!(event.amount_eur > 500)").eval(&missing));

        let no_segment = with(SEGMENT, Value::Missing);
        assert_eq!(eval3("customer.segment == 'mass'", &no_segment), None);
        assert_eq!(eval3("customer.segment != 'mass'", &no_segment), None);
        assert_eq!(eval3("'mass' == customer.segment", &no_segment), None);
        assert_eq!(eval3("customer.segment == event.country", &no_segment), None);
        let no_flag = with(TRUSTED, Value::Missing);
        assert_eq!(eval3("customer.trusted_country", &no_flag), None);
        assert_eq!(eval3("!customer.trusted_country", &no_flag), None);
        assert_eq!(eval3("customer.trusted_country == false", &no_flag), None);
    }

    #[test]
    fn kleene_and_or() {
        let missing = with(AMOUNT, Value::Missing);
        let unknown = "event.amount_eur > 500";
        assert_eq!(eval3(&format!("false && {unknown}"), &missing), Some(false));
        assert_eq!(eval3(&format!("{unknown} && false"), &missing), Some(false));
        assert_eq!(eval3(&format!("true && {unknown}"), &missing), None);
        assert_eq!(eval3(&format!("true || {unknown}"), &missing), Some(true));
        assert_eq!(eval3(&format!("{unknown} || true"), &missing), Some(true));
        assert_eq!(eval3(&format!("false || {unknown}"), &missing), None);
        // The negation of a definite false is a definite true, and fires.
        assert!(compile(&format!("!({unknown} && false)")).eval(&missing));
        assert!(!compile(&format!("!({unknown} && true)")).eval(&missing));
        assert_eq!(eval3(&format!("{unknown} || {unknown}"), &missing), None);
    }

    #[test]
    fn uninterpretable_values_count_as_missing() {
        // The caller returned a value of the wrong type, or a NaN: neither may fire an alert.
        for features in [
            with(AMOUNT, Value::Str("750")),
            with(AMOUNT, Value::Num(f64::NAN)),
            with(AMOUNT, Value::Bool(true)),
        ] {
            assert_eq!(eval3("event.amount_eur > 500", &features), None);
            assert_eq!(eval3("event.amount_eur <= 500", &features), None);
        }
        assert_eq!(eval3("customer.segment == 'mass'", &with(SEGMENT, Value::Num(1.0))), None);
        assert_eq!(eval3("customer.is_new", &with(NEW, Value::Str("true"))), None);
    }

    #[test]
    fn division_by_zero_is_unknown() {
        assert_eq!(eval3("event.amount_eur / 0 > 1", &row()), None);
        assert_eq!(eval3("!(event.amount_eur / 0 > 1)", &row()), None);
        assert_eq!(eval3("1 / 0 == 1 / 0", &row()), None);
        let zero_orders = with(ORDERS, Value::Num(0.0));
        assert_eq!(eval3("event.amount_eur / orders.count_24h > 100", &zero_orders), None);
        assert_eq!(
            eval3("customer.is_new || event.amount_eur / orders.count_24h > 100", &zero_orders),
            Some(true)
        );
        assert!(!compile("event.amount_eur / orders.count_24h > 100").eval(&zero_orders));
        // 0 / 0 would be NaN: also unknown rather than quietly false.
        assert_eq!(eval3("0 * event.amount_eur / 0 == 0", &row()), None);
    }

    #[test]
    fn features_are_deduplicated_in_order_of_appearance() {
        let c = compile(
            "customer.segment == 'mass' && event.amount_eur > 5 \
             || event.amount_eur < 1 && customer.segment in ['x'] && signal.night",
        );
        assert_eq!(c.features(), vec![SEGMENT, AMOUNT, NIGHT]);
        assert!(compile("1 < 2").features().is_empty());
    }

    #[test]
    fn conditions_are_clone_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>(_: &T) {}
        let c = compile("customer.is_new");
        assert_send_sync(&c);
        let copy = c.clone();
        assert_eq!(copy.source(), "customer.is_new");
        assert!(copy.eval(&row()));
    }
}
