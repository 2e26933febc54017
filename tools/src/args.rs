//! A small `--name value` argument reader, enough for the tools' few options.

use std::collections::HashMap;

pub struct Args {
    pub command: Option<String>,
    options: HashMap<String, Vec<String>>,
}

impl Args {
    /// Reads `command --name value --flag ...`; a `--name` followed by another `--` or nothing is a flag.
    pub fn parse(arguments: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut command = None;
        let mut options: HashMap<String, Vec<String>> = HashMap::new();
        let mut iter = arguments.into_iter().peekable();
        while let Some(argument) = iter.next() {
            if let Some(name) = argument.strip_prefix("--") {
                let value = match iter.peek() {
                    Some(next) if !next.starts_with("--") => iter.next().unwrap_or_default(),
                    _ => String::new(),
                };
                options.entry(name.to_owned()).or_default().push(value);
            } else if command.is_none() {
                command = Some(argument);
            } else {
                return Err(format!("unexpected argument {argument:?}"));
            }
        }
        Ok(Self { command, options })
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.options.get(name).and_then(|values| values.last()).map(String::as_str)
    }

    pub fn values(&self, name: &str) -> &[String] {
        self.options.get(name).map_or(&[], Vec::as_slice)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.options.contains_key(name)
    }

    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.value(name).filter(|v| !v.is_empty()).ok_or_else(|| format!("--{name} is required"))
    }

    /// A parsed option, or its default when absent.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.value(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| format!("--{name}: {text:?} is not valid")),
        }
    }

    /// A required option parsed as `T` (an id, say).
    pub fn required_parsed<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        let text = self.required(name)?;
        text.parse().map_err(|_| format!("--{name}: {text:?} is not valid"))
    }
}
