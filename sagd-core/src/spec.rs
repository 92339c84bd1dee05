//! The one `NAME:key=value` syntax that spectra (`power-law:alpha=-0.5`), dataset specs
//! (`mnist:DIR,split=test`) and transforms (`pad:2`, `corrupt:a=0.1,b=0.2`) are written in,
//! and the errors every one of them reports in the same words.
//!
//! A spec is `NAME`, or `NAME:ITEMS` with ITEMS separated by commas: the first item may be a
//! bare argument (`mnist:DIR`, `pad:2`), every other one is `key=value`. Blank items are
//! skipped; a key may appear once. What the name, the argument and the keys mean is the
//! caller's: [`SpecReader`] takes the keys one by one and [`SpecReader::finish`] refuses any
//! left over, naming the known ones.
//!
//! ```
//! use sagd_core::spec::SpecText;
//!
//! let spec = SpecText::parse("mnist:data/mnist,split=test").unwrap();
//! assert_eq!(spec.name(), "mnist");
//! let mut reader = spec.reader(&["split"]);
//! assert_eq!(reader.argument(), Some("data/mnist"));
//! assert_eq!(reader.take("split"), Some("test"));
//! reader.finish().unwrap();
//!
//! let spec = SpecText::parse("shapes:n=5,colour=red").unwrap();
//! let mut reader = spec.reader(&["n", "size"]);
//! assert_eq!(reader.parse::<usize>("n", "a positive integer").unwrap(), Some(5));
//! let err = reader.finish().unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "`shapes:n=5,colour=red`: unknown key `colour` for `shapes` (known: n, size)"
//! );
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A spec that cannot be understood. Every variant names the spec as written, so a message
/// read out of context still says which text was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecError {
    /// The text is not `NAME[:ARG][,key=value…]`, or lacks or repeats a part.
    #[error("`{input}`: {problem}")]
    Syntax {
        /// The spec as written.
        input: String,
        /// What is wrong, e.g. `` `x` is not key=value ``.
        problem: String,
    },
    /// No such name (spectrum, dataset kind, transform).
    #[error("`{input}`: unknown {what} `{name}` (known: {known})")]
    UnknownName {
        /// The spec as written.
        input: String,
        /// What the name names: `spectrum`, `kind`, `transform`.
        what: String,
        /// The name as written.
        name: String,
        /// The names there are, comma-separated.
        known: String,
    },
    /// A key the named thing does not take.
    #[error("`{input}`: unknown key `{key}` for `{name}` (known: {known})")]
    UnknownKey {
        /// The spec as written.
        input: String,
        /// The spec's name.
        name: String,
        /// The key as written.
        key: String,
        /// The keys it takes, comma-separated (`none` when it takes none).
        known: String,
    },
    /// A value outside its key's domain.
    #[error(
        "`{input}`: `{key}` = {} is invalid: expected {expected}",
        shown(value)
    )]
    InvalidValue {
        /// The spec as written.
        input: String,
        /// The key (or the argument's meaning, e.g. `pixels`).
        key: String,
        /// The value as written.
        value: String,
        /// What was expected.
        expected: String,
    },
}

impl SpecError {
    /// A [`SpecError::Syntax`] of `input`.
    pub fn syntax(input: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Syntax {
            input: input.into(),
            problem: problem.into(),
        }
    }

    /// A [`SpecError::InvalidValue`] of `input`.
    pub fn invalid(
        input: impl Into<String>,
        key: impl Into<String>,
        value: impl fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Self::InvalidValue {
            input: input.into(),
            key: key.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// A [`SpecError::UnknownName`]: `name` is not one of `known`.
    pub fn unknown_name(
        input: impl Into<String>,
        what: impl Into<String>,
        name: impl Into<String>,
        known: &[&str],
    ) -> Self {
        Self::UnknownName {
            input: input.into(),
            what: what.into(),
            name: name.into(),
            known: list_or_none(known),
        }
    }

    /// A [`SpecError::UnknownKey`]: `key` is not one of `known`.
    pub fn unknown_key(
        input: impl Into<String>,
        name: impl Into<String>,
        key: impl Into<String>,
        known: &[&str],
    ) -> Self {
        Self::UnknownKey {
            input: input.into(),
            name: name.into(),
            key: key.into(),
            known: list_or_none(known),
        }
    }
}

/// A value for a message: an empty one as `""`, so that `n=` reads as what it is.
fn shown(value: &str) -> &str {
    if value.is_empty() { "\"\"" } else { value }
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// A spec split into its name, its bare argument and its `key=value` pairs (in written order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecText {
    input: String,
    name: String,
    argument: Option<String>,
    pairs: Vec<(String, String)>,
}

impl SpecText {
    /// Splits `input` (trimmed). Refuses an empty name, a `key=value` item with an empty key,
    /// a bare item after the first, and a key given twice.
    ///
    /// # Errors
    /// [`SpecError::Syntax`] naming the item at fault.
    pub fn parse(input: &str) -> Result<Self, SpecError> {
        let input = input.trim();
        let fail = |problem: String| SpecError::syntax(input, problem);
        let (name, rest) = match input.split_once(':') {
            Some((name, rest)) => (name.trim(), Some(rest)),
            None => (input, None),
        };
        if name.is_empty() {
            return Err(fail("missing the name before `:`".to_string()));
        }
        let mut argument = None;
        let mut pairs: Vec<(String, String)> = Vec::new();
        let items = rest.into_iter().flat_map(|r| r.split(','));
        for (i, item) in items.enumerate() {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            match item.split_once('=') {
                Some((key, value)) => {
                    let key = key.trim();
                    if key.is_empty() {
                        return Err(fail(format!("`{item}` has an empty key")));
                    }
                    if pairs.iter().any(|(k, _)| k == key) {
                        return Err(fail(format!("`{key}` given twice")));
                    }
                    pairs.push((key.to_string(), value.trim().to_string()));
                }
                None if i == 0 => argument = Some(item.to_string()),
                None => return Err(fail(format!("`{item}` is not key=value"))),
            }
        }
        Ok(Self {
            input: input.to_string(),
            name: name.to_string(),
            argument,
            pairs,
        })
    }

    /// The spec as written (trimmed).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The name before the `:`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `key=value` pairs, in written order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// A reader of the pairs for a name whose keys are `known`.
    pub fn reader<'a>(&'a self, known: &'a [&'a str]) -> SpecReader<'a> {
        SpecReader {
            spec: self,
            known,
            taken: BTreeSet::new(),
            argument_taken: false,
        }
    }

    /// A [`SpecError::Syntax`] of this spec.
    pub fn syntax_error(&self, problem: impl Into<String>) -> SpecError {
        SpecError::syntax(&self.input, problem)
    }

    /// A [`SpecError::InvalidValue`] of this spec.
    pub fn invalid(
        &self,
        key: impl Into<String>,
        value: impl fmt::Display,
        expected: impl Into<String>,
    ) -> SpecError {
        SpecError::invalid(&self.input, key, value, expected)
    }
}

impl fmt::Display for SpecText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.input)
    }
}

/// Takes a [`SpecText`]'s argument and keys one by one; [`finish`](Self::finish) refuses what
/// was not taken.
#[derive(Debug)]
pub struct SpecReader<'a> {
    spec: &'a SpecText,
    known: &'a [&'a str],
    taken: BTreeSet<&'a str>,
    argument_taken: bool,
}

impl<'a> SpecReader<'a> {
    /// The spec being read.
    pub fn spec(&self) -> &'a SpecText {
        self.spec
    }

    /// The bare argument (`DIR` in `mnist:DIR`), if any.
    pub fn argument(&mut self) -> Option<&'a str> {
        self.argument_taken = true;
        self.spec.argument.as_deref()
    }

    /// The bare argument, which this name needs: `what` says what it is (`a path: mnist:PATH`).
    ///
    /// # Errors
    /// [`SpecError::Syntax`]: `` `NAME` needs WHAT ``.
    pub fn required_argument(&mut self, what: &str) -> Result<&'a str, SpecError> {
        self.argument().ok_or_else(|| {
            self.spec
                .syntax_error(format!("`{}` needs {what}", self.spec.name))
        })
    }

    /// The value of `key`, if given.
    pub fn take(&mut self, key: &str) -> Option<&'a str> {
        let (k, v) = self.spec.pairs.iter().find(|(k, _)| k == key)?;
        self.taken.insert(k.as_str());
        Some(v.as_str())
    }

    /// The value of `key` parsed as a `T`, if given.
    ///
    /// # Errors
    /// [`SpecError::InvalidValue`] naming the key, the value and `expected`.
    pub fn parse<T: FromStr>(&mut self, key: &str, expected: &str) -> Result<Option<T>, SpecError> {
        match self.take(key) {
            None => Ok(None),
            Some(value) => value
                .parse()
                .map(Some)
                .map_err(|_| self.spec.invalid(key, value, expected)),
        }
    }

    /// The value of `key` as a finite number, if given.
    ///
    /// # Errors
    /// [`SpecError::InvalidValue`] naming the key, the value and `expected`.
    pub fn number(&mut self, key: &str, expected: &str) -> Result<Option<f64>, SpecError> {
        let value = self.parse::<f64>(key, expected)?;
        match value {
            Some(x) if !x.is_finite() => Err(self.spec.invalid(key, x, expected)),
            other => Ok(other),
        }
    }

    /// Checks that every key was taken, and that an argument was given only where one was read.
    ///
    /// # Errors
    /// [`SpecError::UnknownKey`] for the first key not taken; [`SpecError::Syntax`] for an
    /// argument this name does not take.
    pub fn finish(self) -> Result<(), SpecError> {
        if let Some((key, _)) = self
            .spec
            .pairs
            .iter()
            .find(|(k, _)| !self.taken.contains(k.as_str()))
        {
            return Err(SpecError::unknown_key(
                &self.spec.input,
                &self.spec.name,
                key,
                self.known,
            ));
        }
        if !self.argument_taken
            && let Some(argument) = &self.spec.argument
        {
            return Err(self.spec.syntax_error(format!(
                "`{}` takes only key=value parameters, not `{argument}`",
                self.spec.name
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_name_argument_and_pairs() {
        let spec = SpecText::parse(" folder:imgs , channels=3,resize=8x8, ").unwrap();
        assert_eq!(spec.name(), "folder");
        assert_eq!(spec.input(), "folder:imgs , channels=3,resize=8x8,");
        let mut r = spec.reader(&["channels", "resize"]);
        assert_eq!(r.argument(), Some("imgs"));
        assert_eq!(r.parse::<usize>("channels", "1 or 3").unwrap(), Some(3));
        assert_eq!(r.take("resize"), Some("8x8"));
        assert_eq!(r.take("missing"), None);
        r.finish().unwrap();
        let bare = SpecText::parse("isotropic").unwrap();
        assert_eq!((bare.name(), bare.pairs().len()), ("isotropic", 0));
    }

    #[test]
    fn syntax_errors_name_the_item() {
        for (input, problem) in [
            (":a=1", "missing the name before `:`"),
            ("x:a=1,b", "`b` is not key=value"),
            ("x:a=1,a=2", "`a` given twice"),
            ("x:=3", "`=3` has an empty key"),
        ] {
            let e = SpecText::parse(input).unwrap_err();
            assert_eq!(e, SpecError::syntax(input, problem), "{input}");
        }
    }

    #[test]
    fn leftovers_are_refused_by_name() {
        let spec = SpecText::parse("pad:2").unwrap();
        let e = spec.reader(&[]).finish().unwrap_err().to_string();
        assert_eq!(e, "`pad:2`: `pad` takes only key=value parameters, not `2`");
        let spec = SpecText::parse("grf:beta=2,gamma=1").unwrap();
        let mut r = spec.reader(&["beta", "n"]);
        assert_eq!(r.number("beta", "a number").unwrap(), Some(2.0));
        let e = r.finish().unwrap_err().to_string();
        assert_eq!(
            e,
            "`grf:beta=2,gamma=1`: unknown key `gamma` for `grf` (known: beta, n)"
        );
    }

    #[test]
    fn values_are_checked_naming_key_and_value() {
        let spec = SpecText::parse("hflip:p=nan").unwrap();
        let e = spec.reader(&["p"]).number("p", "a probability in [0, 1]");
        assert_eq!(
            e.unwrap_err().to_string(),
            "`hflip:p=nan`: `p` = NaN is invalid: expected a probability in [0, 1]"
        );
        let spec = SpecText::parse("mnist:").unwrap();
        let e = spec.reader(&[]).required_argument("a path: mnist:PATH");
        assert_eq!(
            e.unwrap_err().to_string(),
            "`mnist:`: `mnist` needs a path: mnist:PATH"
        );
    }
}
