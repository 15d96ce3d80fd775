//! Reading and parsing a config file, with located errors.

use std::fmt;
use std::path::Path;

use serde_saphyr::{Location, Spanned};

use super::model::Config;

/// One problem in a config file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name as given.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects located errors while validating one file.
#[derive(Debug)]
pub struct ErrorSink {
    file: String,
    errors: Vec<ConfigError>,
}

impl ErrorSink {
    /// A sink for errors in `file`.
    pub fn new(file: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            errors: Vec::new(),
        }
    }

    /// Records an error at `location`.
    pub fn at(&mut self, location: Location, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line: location.line(),
            column: location.column(),
            message: message.into(),
        });
    }

    /// Records an error at the place a spanned value was written.
    pub fn on<T>(&mut self, spanned: &Spanned<T>, message: impl Into<String>) {
        self.at(spanned.referenced, message);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors, or `Ok` when there are none.
    pub fn finish(self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}

/// A parsed config and the name of the file it came from.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The file name (for messages).
    pub file: String,
    /// The parsed config.
    pub config: Config,
    /// The same file as JSON (for `/config_dump`), when it converts;
    /// shared, so each snapshot built from it does not copy it.
    pub source: Option<std::sync::Arc<serde_json::Value>>,
    /// Where relative file paths in the config (TLS certificates and keys)
    /// are read from: the config file's directory (`None`: the working
    /// directory).
    pub base_dir: Option<std::path::PathBuf>,
}

/// Parses config text. `file` names it in error messages.
pub fn parse_str(text: &str, file: &str) -> Result<LoadedConfig, ConfigErrors> {
    let source = || {
        serde_saphyr::from_str::<serde_json::Value>(text)
            .ok()
            .map(std::sync::Arc::new)
    };
    parse_with_source(text, file, source)
}

/// [`parse_str`] for text whose JSON form the caller already has (a
/// config composed as JSON): `source` gives it, so the text is parsed once.
pub fn parse_with_source(
    text: &str,
    file: &str,
    source: impl FnOnce() -> Option<std::sync::Arc<serde_json::Value>>,
) -> Result<LoadedConfig, ConfigErrors> {
    match serde_saphyr::from_str::<Config>(text) {
        Ok(config) => Ok(LoadedConfig {
            file: file.to_string(),
            config,
            source: source(),
            base_dir: None,
        }),
        Err(err) => {
            let (line, column) = err
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            Err(ConfigErrors(vec![ConfigError {
                file: file.to_string(),
                line,
                column,
                message: first_line(&err.to_string()),
            }]))
        }
    }
}

/// Reads and parses a config file (no cross-checks; see [`super::validate`]).
pub fn load_file(path: &Path) -> Result<LoadedConfig, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        }])
    })?;
    let mut loaded = parse_str(&text, &file)?;
    loaded.base_dir = path.parent().map(Path::to_path_buf);
    Ok(loaded)
}

/// serde-saphyr renders a code snippet after the message; keep the message.
fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_string()
}
