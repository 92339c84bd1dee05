//! The plugin registry of spectra: every crate linked into a program can submit a
//! [`SpectrumEntry`] through `inventory`, and [`parse_spectrum`] builds a spectrum from a
//! config string `NAME`, `NAME:key=value,key=value` or `@file.toml`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::error::SpectrumError;
use crate::grid::RadiusConvention;
use crate::spec::{SpecError, SpecText};
use crate::spectrum::NoiseSpectrum;

/// A parameter value as written in a config string or file.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A number.
    Number(f64),
    /// Text (a radius convention, or a not yet typed value from a config string).
    Text(String),
    /// A list of numbers (written `a;b;c` in a config string, an array in TOML).
    List(Vec<f64>),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Number(x) => write!(f, "{x:?}"),
            ParamValue::Text(s) => f.write_str(s),
            ParamValue::List(xs) => {
                let parts: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
                f.write_str(&parts.join(";"))
            }
        }
    }
}

/// Parameters by name.
pub type ParamMap = BTreeMap<String, ParamValue>;

/// The type, default and verification range of one parameter.
#[derive(Debug, Clone, Copy)]
pub enum ParamKind {
    /// A real number. `sample` is the range the property suite draws from when the user does
    /// not fix the parameter (log-uniform when `log_sample`, which needs a positive range).
    Number {
        /// Default value.
        default: f64,
        /// Range for random verification.
        sample: (f64, f64),
        /// Draw log-uniformly.
        log_sample: bool,
    },
    /// A radius convention.
    Radius {
        /// Default convention.
        default: RadiusConvention,
    },
    /// A list of numbers. The property suite draws lists of 4 values in `sample`, sorted
    /// increasingly when `sorted`.
    List {
        /// Default list.
        default: &'static [f64],
        /// Range of each element for random verification.
        sample: (f64, f64),
        /// Draw a strictly increasing list.
        sorted: bool,
    },
    /// One of a fixed set of words. The property suite draws each with equal probability.
    Choice {
        /// Default word.
        default: &'static str,
        /// Every accepted word.
        choices: &'static [&'static str],
    },
}

/// One documented parameter of a registered spectrum.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// Name as written in configs.
    pub name: &'static str,
    /// One-line description.
    pub doc: &'static str,
    /// Type, default and verification range.
    pub kind: ParamKind,
}

impl ParamSpec {
    /// The default value.
    pub fn default_value(&self) -> ParamValue {
        match self.kind {
            ParamKind::Number { default, .. } => ParamValue::Number(default),
            ParamKind::Radius { default } => ParamValue::Text(default.name().to_string()),
            ParamKind::List { default, .. } => ParamValue::List(default.to_vec()),
            ParamKind::Choice { default, .. } => ParamValue::Text(default.to_string()),
        }
    }

    /// The type as words, for listings (a choice lists its words: `one of (a|b)`).
    pub fn type_name(&self) -> String {
        match self.kind {
            ParamKind::Number { .. } => "number".into(),
            ParamKind::Radius { .. } => "radius (cycles|unit|nyquist)".into(),
            ParamKind::List { .. } => "list of numbers".into(),
            ParamKind::Choice { choices, .. } => format!("one of ({})", choices.join("|")),
        }
    }
}

/// Builds a spectrum from its parameters (already checked against the entry's [`ParamSpec`]s
/// and completed with defaults); validates them and names the wrong one.
pub type SpectrumBuilder = fn(&ParamReader) -> Result<Box<dyn NoiseSpectrum>, SpectrumError>;

/// A registered spectrum: what `sagd spectra list` shows and what config strings resolve to.
#[derive(Debug)]
pub struct SpectrumEntry {
    /// Name (equal to the typetag `kind`).
    pub name: &'static str,
    /// One-line description.
    pub doc: &'static str,
    /// Parameters with defaults.
    pub params: &'static [ParamSpec],
    /// Constructor.
    pub build: SpectrumBuilder,
}

inventory::collect!(SpectrumEntry);

/// Every registered spectrum, sorted by name.
pub fn entries() -> Vec<&'static SpectrumEntry> {
    let mut all: Vec<&'static SpectrumEntry> = inventory::iter::<SpectrumEntry>().collect();
    all.sort_by_key(|e| e.name);
    all
}

/// The entry registered under `name`.
pub fn entry(name: &str) -> Result<&'static SpectrumEntry, SpectrumError> {
    entry_of(name, name)
}

/// The entry registered under `name`, read from the spectrum `input`.
fn entry_of(input: &str, name: &str) -> Result<&'static SpectrumEntry, SpectrumError> {
    let all = entries();
    all.iter().find(|e| e.name == name).copied().ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|e| e.name).collect();
        let names = if names.is_empty() {
            vec!["none registered; link sagd-ops"]
        } else {
            names
        };
        SpecError::unknown_name(input, "spectrum", name, &names).into()
    })
}

impl SpectrumEntry {
    /// Builds the spectrum from `params`; unknown names are errors, missing ones take defaults.
    pub fn build_from(&self, params: &ParamMap) -> Result<Box<dyn NoiseSpectrum>, SpectrumError> {
        self.build_named(self.name, params)
    }

    /// [`build_from`](Self::build_from) for the spectrum written `input`, which errors name.
    fn build_named(
        &self,
        input: &str,
        params: &ParamMap,
    ) -> Result<Box<dyn NoiseSpectrum>, SpectrumError> {
        let reader = ParamReader::new(self, params, input)?;
        let spectrum = (self.build)(&reader)?;
        spectrum.validate()?;
        Ok(spectrum)
    }
}

/// Typed access to a spectrum's parameters, completed with defaults. Errors name the parameter.
#[derive(Debug)]
pub struct ParamReader {
    spectrum: &'static str,
    values: ParamMap,
}

impl ParamReader {
    fn new(entry: &SpectrumEntry, given: &ParamMap, input: &str) -> Result<Self, SpectrumError> {
        if let Some(key) = given
            .keys()
            .find(|key| !entry.params.iter().any(|p| p.name == key.as_str()))
        {
            let known: Vec<&str> = entry.params.iter().map(|p| p.name).collect();
            return Err(SpecError::unknown_key(input, entry.name, key, &known).into());
        }
        let mut values = ParamMap::new();
        for spec in entry.params {
            let value = given
                .get(spec.name)
                .cloned()
                .unwrap_or_else(|| spec.default_value());
            values.insert(spec.name.to_string(), value);
        }
        Ok(Self {
            spectrum: entry.name,
            values,
        })
    }

    fn invalid(&self, name: &str, value: &ParamValue, expected: &str) -> SpectrumError {
        SpectrumError::InvalidParam {
            spectrum: self.spectrum.to_string(),
            param: name.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }

    fn get(&self, name: &str) -> Result<&ParamValue, SpectrumError> {
        self.values.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.values.keys().map(String::as_str).collect();
            SpecError::unknown_key(self.spectrum, self.spectrum, name, &known).into()
        })
    }

    /// A finite number.
    pub fn number(&self, name: &str) -> Result<f64, SpectrumError> {
        let value = self.get(name)?;
        let x = match value {
            ParamValue::Number(x) => *x,
            ParamValue::Text(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| self.invalid(name, value, "a number"))?,
            ParamValue::List(_) => return Err(self.invalid(name, value, "a number, not a list")),
        };
        if !x.is_finite() {
            return Err(self.invalid(name, value, "a finite number"));
        }
        Ok(x)
    }

    /// A radius convention.
    pub fn radius(&self, name: &str) -> Result<RadiusConvention, SpectrumError> {
        let value = self.get(name)?;
        match value {
            ParamValue::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| self.invalid(name, value, "one of cycles, unit, nyquist")),
            _ => Err(self.invalid(name, value, "one of cycles, unit, nyquist")),
        }
    }

    /// One of `choices` (the word as written, trimmed); the error lists them.
    pub fn choice(
        &self,
        name: &str,
        choices: &[&'static str],
    ) -> Result<&'static str, SpectrumError> {
        let value = self.get(name)?;
        let expected = || format!("one of {}", choices.join(", "));
        match value {
            ParamValue::Text(s) => choices
                .iter()
                .find(|c| **c == s.trim())
                .copied()
                .ok_or_else(|| self.invalid(name, value, &expected())),
            _ => Err(self.invalid(name, value, &expected())),
        }
    }

    /// A list of finite numbers.
    pub fn list(&self, name: &str) -> Result<Vec<f64>, SpectrumError> {
        let value = self.get(name)?;
        let xs = match value {
            ParamValue::List(xs) => xs.clone(),
            ParamValue::Number(x) => vec![*x],
            ParamValue::Text(s) => s
                .split(';')
                .map(|p| p.trim().parse::<f64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| self.invalid(name, value, "numbers separated by `;`"))?,
        };
        if xs.iter().any(|x| !x.is_finite()) {
            return Err(self.invalid(name, value, "finite numbers"));
        }
        Ok(xs)
    }
}

/// Builds a spectrum from `NAME`, `NAME:key=value,key=value` or `@file.toml` (a TOML table
/// with `kind = "NAME"` and the parameters as keys).
pub fn parse_spectrum(input: &str) -> Result<Box<dyn NoiseSpectrum>, SpectrumError> {
    let (name, params) = parse_spectrum_params(input)?;
    entry_of(input.trim(), &name)?.build_named(input.trim(), &params)
}

/// Splits a spectrum string (or file) into its name and the parameters given explicitly.
pub fn parse_spectrum_params(input: &str) -> Result<(String, ParamMap), SpectrumError> {
    let input = input.trim();
    if let Some(path) = input.strip_prefix('@') {
        return read_spectrum_file(Path::new(path));
    }
    let spec = SpecText::parse(input)?;
    let mut reader = spec.reader(&[]);
    if let Some(argument) = reader.argument() {
        return Err(spec
            .syntax_error(format!("`{argument}` is not of the form key=value"))
            .into());
    }
    let params = spec
        .pairs()
        .iter()
        .map(|(k, v)| (k.clone(), ParamValue::Text(v.clone())))
        .collect();
    Ok((spec.name().to_string(), params))
}

fn read_spectrum_file(path: &Path) -> Result<(String, ParamMap), SpectrumError> {
    let input = format!("@{}", path.display());
    let fail = |problem: String| SpectrumError::from(SpecError::syntax(&input, problem));
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read file: {e}")))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| fail(format!("invalid TOML: {}", e.message())))?;
    spectrum_params_from_table(&table).map_err(fail)
}

/// Reads `kind` and the parameters of a spectrum from a TOML table.
pub fn spectrum_params_from_table(table: &toml::Table) -> Result<(String, ParamMap), String> {
    let kind = match table.get("kind") {
        Some(toml::Value::String(s)) => s.clone(),
        Some(_) => return Err("`kind` must be a string naming the spectrum".to_string()),
        None => return Err("missing `kind` (the spectrum name)".to_string()),
    };
    let mut params = ParamMap::new();
    for (key, value) in table.iter().filter(|(k, _)| k.as_str() != "kind") {
        let v = match value {
            toml::Value::Float(x) => ParamValue::Number(*x),
            toml::Value::Integer(i) => ParamValue::Number(*i as f64),
            toml::Value::String(s) => ParamValue::Text(s.clone()),
            toml::Value::Array(items) => ParamValue::List(
                items
                    .iter()
                    .map(|item| match item {
                        toml::Value::Float(x) => Ok(*x),
                        toml::Value::Integer(i) => Ok(*i as f64),
                        _ => Err(format!("`{key}` must be an array of numbers")),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            _ => return Err(format!("`{key}` must be a number, a string or an array")),
        };
        params.insert(key.clone(), v);
    }
    Ok((kind, params))
}

/// A spectrum as a config or flag writes it (`power-law:alpha=-0.5`, `@file.toml`) together
/// with the spectrum it names, parsed and validated once, when the text is read. It is
/// (de)serialized as the text, so a loaded config carries a valid spectrum and writes back
/// exactly what was written. Two specs are equal when their texts are.
///
/// ```no_run
/// use sagd_core::registry::SpectrumSpec;
///
/// // The built-in spectra are registered by `sagd-ops` (call `sagd_ops::link()`).
/// let spec: SpectrumSpec = "power-law:alpha=-0.5".parse().unwrap();
/// assert_eq!(spec.spectrum().name(), "power-law");
/// assert_eq!(spec.to_string(), "power-law:alpha=-0.5");
/// ```
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SpectrumSpec {
    text: String,
    spectrum: std::sync::Arc<dyn NoiseSpectrum>,
}

impl SpectrumSpec {
    /// The text as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed spectrum.
    pub fn spectrum(&self) -> &dyn NoiseSpectrum {
        self.spectrum.as_ref()
    }

    /// The isotropic spectrum (`isotropic`, the default of a run's `[noise]` table).
    ///
    /// # Errors
    /// When no `isotropic` spectrum is registered (sagd-ops not linked).
    pub fn isotropic() -> Result<Self, SpectrumError> {
        "isotropic".parse()
    }
}

impl std::str::FromStr for SpectrumSpec {
    type Err = SpectrumError;
    fn from_str(text: &str) -> Result<Self, SpectrumError> {
        Ok(Self {
            spectrum: parse_spectrum(text)?.into(),
            text: text.to_string(),
        })
    }
}

impl TryFrom<String> for SpectrumSpec {
    type Error = SpectrumError;
    fn try_from(text: String) -> Result<Self, SpectrumError> {
        text.parse()
    }
}

impl From<SpectrumSpec> for String {
    fn from(spec: SpectrumSpec) -> String {
        spec.text
    }
}

impl fmt::Display for SpectrumSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for SpectrumSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpectrumSpec({:?})", self.text)
    }
}

impl PartialEq for SpectrumSpec {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
