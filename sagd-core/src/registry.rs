//! The plugin registry of spectra: every crate linked into a program can submit a
//! [`SpectrumEntry`] through `inventory`, and [`parse_spectrum`] builds a spectrum from a
//! config string `NAME`, `NAME:key=value,key=value` or `@file.toml`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::error::SpectrumError;
use crate::grid::RadiusConvention;
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
        }
    }

    /// The type as a word, for listings.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ParamKind::Number { .. } => "number",
            ParamKind::Radius { .. } => "radius (cycles|unit|nyquist)",
            ParamKind::List { .. } => "list of numbers",
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
    entries()
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| SpectrumError::UnknownSpectrum {
            name: name.to_string(),
            available: available_names(),
        })
}

fn available_names() -> String {
    let names: Vec<&str> = entries().iter().map(|e| e.name).collect();
    if names.is_empty() {
        "none registered; link sagd-ops".to_string()
    } else {
        names.join(", ")
    }
}

impl SpectrumEntry {
    /// Builds the spectrum from `params`; unknown names are errors, missing ones take defaults.
    pub fn build_from(&self, params: &ParamMap) -> Result<Box<dyn NoiseSpectrum>, SpectrumError> {
        let reader = ParamReader::new(self, params)?;
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
    fn new(entry: &SpectrumEntry, given: &ParamMap) -> Result<Self, SpectrumError> {
        for key in given.keys() {
            if !entry.params.iter().any(|p| p.name == key) {
                let known: Vec<&str> = entry.params.iter().map(|p| p.name).collect();
                return Err(SpectrumError::UnknownParam {
                    spectrum: entry.name.to_string(),
                    param: key.clone(),
                    known: if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    },
                });
            }
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
        self.values
            .get(name)
            .ok_or_else(|| SpectrumError::UnknownParam {
                spectrum: self.spectrum.to_string(),
                param: name.to_string(),
                known: self.values.keys().cloned().collect::<Vec<_>>().join(", "),
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
    entry(&name)?.build_from(&params)
}

/// Splits a spectrum string (or file) into its name and the parameters given explicitly.
pub fn parse_spectrum_params(input: &str) -> Result<(String, ParamMap), SpectrumError> {
    let input = input.trim();
    if let Some(path) = input.strip_prefix('@') {
        return read_spectrum_file(Path::new(path));
    }
    let parse_err = |reason: &str| SpectrumError::Parse {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let (name, rest) = match input.split_once(':') {
        Some((n, r)) => (n.trim(), Some(r)),
        None => (input, None),
    };
    if name.is_empty() {
        return Err(parse_err("missing spectrum name before `:`"));
    }
    let mut params = ParamMap::new();
    if let Some(rest) = rest {
        for part in rest.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| parse_err(&format!("`{part}` is not of the form key=value")))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(parse_err(&format!("`{part}` has an empty key")));
            }
            if params
                .insert(key.to_string(), ParamValue::Text(value.trim().to_string()))
                .is_some()
            {
                return Err(parse_err(&format!("parameter `{key}` given twice")));
            }
        }
    }
    Ok((name.to_string(), params))
}

fn read_spectrum_file(path: &Path) -> Result<(String, ParamMap), SpectrumError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SpectrumError::Parse {
        input: format!("@{shown}"),
        reason: format!("cannot read file: {e}"),
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| SpectrumError::Parse {
        input: format!("@{shown}"),
        reason: format!("invalid TOML: {}", e.message()),
    })?;
    spectrum_params_from_table(&table).map_err(|reason| SpectrumError::Parse {
        input: format!("@{shown}"),
        reason,
    })
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
