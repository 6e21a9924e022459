//! The JSON body extractor of every route: actix's `web::Json` (its limit, content type and
//! problem+json errors from `json_config`), refusing any body that is not a JSON object. serde's
//! derived structs also accept an array of field values (`[null, null]` for a two-field
//! struct), which no schema in the spec allows and no client means.

use std::{fmt, marker::PhantomData};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

/// A request body that must be a JSON object; derefs to the parsed `T`.
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: de::DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<Object<T>>::from_request(req, payload);
        Box::pin(async move { body.await.map(|b| Json(b.into_inner().0)) })
    }
}

/// `T`, read only from a JSON object.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }

        d.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}

#[cfg(test)]
mod tests {
    use super::Object;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        a: Option<u8>,
        b: Option<u8>,
    }

    #[test]
    fn objects_are_read_and_arrays_refused() {
        let ok: Object<Pair> = serde_json::from_str(r#"{"a": 1}"#).unwrap();
        assert_eq!(
            ok.0,
            Pair {
                a: Some(1),
                b: None
            }
        );
        assert!(
            serde_json::from_str::<Pair>("[null, null]").is_ok(),
            "serde alone takes it"
        );
        for body in ["[null, null]", "[]", "null", "1", "\"a\"", r#"{"c": 1}"#] {
            assert!(
                serde_json::from_str::<Object<Pair>>(body).is_err(),
                "{body}"
            );
        }
    }
}
