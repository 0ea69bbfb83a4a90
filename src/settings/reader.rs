//! Reading settings: one [`Reader`] goes through every setting a component needs and collects
//! every problem, each naming its setting, so that a start-up reports them all at once.

use super::parse;
use std::fmt;
use std::time::Duration;

/// A setting whose value is one of a few names (a mode, a source). Parsing ignores case;
/// messages list the names.
pub trait Choice: Copy + Sized + 'static {
    const ALL: &'static [Self];
    fn name(self) -> &'static str;

    fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| format!("'{text}' is not one of: {}", Self::names().join(", ")))
    }

    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|c| c.name()).collect()
    }
}

/// One bad or missing setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub setting: &'static str,
    pub problem: String,
}

/// Every bad or missing setting found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SettingsError(pub Vec<SettingError>);

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} invalid setting{}: ", if n == 1 { "" } else { "s" })?;
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.setting, e.problem))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl SettingsError {
    /// Whether `setting` is one of the problems.
    pub fn names(&self, setting: &str) -> bool {
        self.0.iter().any(|e| e.setting == setting)
    }
}

/// Reads settings through a lookup (the environment, or a map in tests). Empty values count
/// as unset; surrounding whitespace is ignored.
pub struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<SettingError>,
    warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn get(&self, setting: &str) -> Option<String> {
        (self.lookup)(setting)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn fail(&mut self, setting: &'static str, problem: impl Into<String>) {
        self.errors.push(SettingError {
            setting,
            problem: problem.into(),
        });
    }

    /// A problem that does not stop anything, for the start-up log.
    pub fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }

    /// The setting parsed by `parse`; `None` when it is unset or bad (then a problem is noted).
    pub fn parse<T>(
        &mut self,
        setting: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.get(setting)?;
        match parse(&text) {
            Ok(value) => Some(value),
            Err(problem) => {
                self.fail(setting, problem);
                None
            }
        }
    }

    pub fn choice<T: Choice>(&mut self, setting: &'static str, default: T) -> T {
        self.parse(setting, T::parse).unwrap_or(default)
    }

    /// A whole number in `min..=max`.
    pub fn number(&mut self, setting: &'static str, default: u32, min: u32, max: u32) -> u32 {
        self.parse(setting, |text| parse::number(text, min, max))
            .unwrap_or(default)
    }

    /// A duration with a unit (`90s`, `25m`, `1h`).
    pub fn duration(&mut self, setting: &'static str) -> Option<Duration> {
        self.parse(setting, parse::duration)
    }

    pub fn flag(&mut self, setting: &'static str, default: bool) -> bool {
        self.parse(setting, parse::flag).unwrap_or(default)
    }

    /// A list separated by commas, semicolons or spaces.
    pub fn list(&self, setting: &str) -> Vec<String> {
        self.get(setting)
            .map(|text| parse::list(&text))
            .unwrap_or_default()
    }

    pub fn has_problems(&self) -> bool {
        !self.errors.is_empty()
    }

    /// `value` with the warnings, or every problem found.
    pub fn finish<T>(self, value: T) -> Result<(T, Vec<String>), SettingsError> {
        if self.errors.is_empty() {
            Ok((value, self.warnings))
        } else {
            Err(SettingsError(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Colour {
        Red,
        DarkBlue,
    }

    impl Choice for Colour {
        const ALL: &'static [Self] = &[Colour::Red, Colour::DarkBlue];
        fn name(self) -> &'static str {
            match self {
                Colour::Red => "red",
                Colour::DarkBlue => "dark-blue",
            }
        }
    }

    #[test]
    fn every_problem_is_kept_and_names_its_setting() {
        let lookup = |name: &str| match name {
            "A" => Some(" Dark-Blue ".into()),
            "B" => Some("purple".into()),
            "C" => Some("99".into()),
            "D" => Some("25".into()),
            "E" => Some("  ".into()),
            _ => None,
        };
        let mut r = Reader::new(&lookup);
        assert_eq!(r.choice("A", Colour::Red), Colour::DarkBlue);
        assert_eq!(r.choice("B", Colour::Red), Colour::Red);
        assert_eq!(r.number("C", 1, 1, 10), 1);
        assert_eq!(r.duration("D"), None);
        assert_eq!(r.get("E"), None, "blank is unset");
        let e = r.finish(()).unwrap_err();
        assert!(
            e.names("B") && e.names("C") && e.names("D") && !e.names("A"),
            "{e}"
        );
        let text = e.to_string();
        assert!(text.starts_with("3 invalid settings: "), "{text}");
        assert!(
            text.contains("red, dark-blue") && text.contains("from 1 to 10"),
            "{text}"
        );
        assert!(text.contains("unit"), "{text}");
    }
}
