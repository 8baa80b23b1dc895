//! [`Named`]: a registry choice (`_name_` plus that entry's options), and the `registry!`
//! macro that turns one line per entry into a typed config enum.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use super::{ConfigError, from_value_at, suggest};

/// A registry choice: `_name_` plus that entry's options (`layer: s4d` is shorthand for
/// `layer: {_name_: s4d}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    /// The registered name.
    pub name: String,
    /// Every other key, validated by the registry entry.
    pub options: Mapping,
}

impl Named {
    /// Deserializes the options into the entry's typed config, naming `path` in errors.
    pub fn options_as<T: DeserializeOwned>(&self, path: &str) -> Result<T, ConfigError> {
        from_value_at(Value::Mapping(self.options.clone()), path)
    }

    /// Rebuilds a `Named` from a typed config (so printed configs show every default).
    pub fn from_typed<T: Serialize>(name: &str, typed: &T) -> Self {
        let options = match serde_yaml::to_value(typed) {
            Ok(Value::Mapping(m)) => m,
            _ => Mapping::new(),
        };
        Self { name: name.to_string(), options }
    }

    /// The error for a name that is not registered.
    pub fn unknown(&self, what: &str, path: &str, registered: &[&str]) -> ConfigError {
        let names: Vec<String> = registered.iter().map(|s| s.to_string()).collect();
        ConfigError::Key {
            path: super::join_path(path, "_name_"),
            msg: format!(
                "unknown {what} `{}`{}; registered: {}",
                self.name,
                suggest(&self.name, &names),
                names.join(", ")
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Named {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::String(name) => Ok(Named { name, options: Mapping::new() }),
            Value::Mapping(mut options) => match options.remove("_name_") {
                Some(Value::String(name)) => Ok(Named { name, options }),
                Some(other) => Err(D::Error::custom(format!(
                    "invalid type: {}, expected a registered name under `_name_`",
                    super::inline_yaml(&other)
                ))),
                None => Err(D::Error::custom("missing field `_name_`")),
            },
            other => Err(D::Error::custom(format!(
                "invalid type: {}, expected a name or a mapping with `_name_`",
                super::inline_yaml(&other)
            ))),
        }
    }
}

impl Serialize for Named {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = Mapping::new();
        m.insert("_name_".into(), Value::String(self.name.clone()));
        for (k, v) in &self.options {
            m.insert(k.clone(), v.clone());
        }
        m.serialize(s)
    }
}

/// Declares a registry of typed configs selected by `_name_`: one line per entry.
#[macro_export]
macro_rules! registry {
    ($(#[$m:meta])* $vis:vis enum $Enum:ident ($what:literal) { $($name:literal => $Variant:ident($Cfg:ty)),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        $vis enum $Enum { $(#[doc = $name] $Variant($Cfg)),+ }

        impl $Enum {
            /// Registered names.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// Looks up `named` and validates its options, naming `path` in errors.
            pub fn from_named(named: &$crate::config::Named, path: &str) -> Result<Self, $crate::config::ConfigError> {
                match named.name.as_str() {
                    $($name => Ok($Enum::$Variant(named.options_as(path)?)),)+
                    _ => Err(named.unknown($what, path, Self::NAMES)),
                }
            }

            /// The registered name of this entry.
            pub fn name(&self) -> &'static str {
                match self { $($Enum::$Variant(_) => $name),+ }
            }

            /// Back to a [`Named`]($crate::config::Named) with every default filled in.
            pub fn to_named(&self) -> $crate::config::Named {
                match self { $($Enum::$Variant(c) => $crate::config::Named::from_typed($name, c)),+ }
            }
        }
    };
}
