//! The `labelled_enum!` macro: closed vocabularies stored as snake_case text, with their
//! Chinese and English labels.

/// A closed vocabulary: every value has a stable snake_case name (stored and sent over
/// the API, never renamed) and labels for people.
pub trait Labelled: Sized + Copy + 'static {
    /// Every value, in the order the textbook lists them.
    const ALL: &'static [Self];
    /// The field name used in error messages.
    const FIELD: &'static str;
    fn as_str(self) -> &'static str;
    fn label_zh(self) -> &'static str;
    fn label_en(self) -> &'static str;

    fn parse(value: &str) -> Result<Self, crate::DomainError> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == value)
            .ok_or_else(|| crate::DomainError::UnknownVariant {
                field: Self::FIELD,
                value: value.to_string(),
                allowed: Self::ALL
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

macro_rules! labelled_enum {
    (
        $(#[$meta:meta])*
        $name:ident ($field:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, $en:literal, $zh:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[doc = concat!($en, " (", $zh, ")")] #[serde(rename = $text)] $variant, )+
        }

        // Written by hand: utoipa's derive does not see `#[serde(rename)]` through this
        // macro and would document the Rust variant names instead of the names sent.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .description(Some(concat!($("`", $text, "`: ", $en, " (", $zh, "). "),+)))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl $crate::labels::Labelled for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            const FIELD: &'static str = $field;
            fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            fn label_zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }
            fn label_en(self) -> &'static str {
                match self { $($name::$variant => $en),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::labels::Labelled::as_str(*self))
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::DomainError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                <Self as $crate::labels::Labelled>::parse(value)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::Labelled;
    use crate::customers::LeadSource;

    #[test]
    fn names_round_trip_and_serde_agrees() {
        for source in LeadSource::ALL {
            assert_eq!(LeadSource::parse(source.as_str()), Ok(*source));
            let json = serde_json::to_string(source).expect("serialise");
            assert_eq!(json, format!("\"{}\"", source.as_str()));
        }
        assert_eq!(
            LeadSource::ALL.len(),
            12,
            "the textbook names twelve lead-finding methods"
        );
    }

    #[test]
    fn unknown_value_lists_the_allowed_ones() {
        let error = LeadSource::parse("carrier_pigeon").expect_err("not a lead source");
        let text = error.to_string();
        assert!(
            text.starts_with("lead_source: `carrier_pigeon` is not one of door_to_door, "),
            "{text}"
        );
    }
}
