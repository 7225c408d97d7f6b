//! User code in a saved model: a custom loss or metric is written by its name, and reading one back
//! fails with the way out, since a file cannot hold code.

/// Serialises user code (a custom loss or metric) by its name; reading it back fails with the
/// way out, since a file cannot hold code.
macro_rules! saved_by_name {
    ($t:ty, $what:literal) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.name)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let name = <String as serde::Deserialize>::deserialize(d)?;
                Err(<D::Error as serde::de::Error>::custom(format!(
                    "the {} `{name}` is user code, which a file cannot hold: build the model in code and call \
                     load_weights",
                    $what
                )))
            }
        }
    };
}
pub(crate) use saved_by_name;
