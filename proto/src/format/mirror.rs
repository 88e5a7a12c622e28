//! The conversion traits between today's types and their twins of each format, with the impls
//! every container shares (`Vec`, `Option`, maps, boxes), and macros for structs and enums whose
//! twins name the same fields and variants. A struct's conversion is then one line per struct,
//! written where the twin is defined, and a field added later is one word in it.

use super::Unrepresentable;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Today's value → its format-0 twin, or what format 0 cannot say.
pub trait ToV0<T> {
    fn to_v0(&self) -> Result<T, Unrepresentable>;
}

/// A format-0 value → today's type (format 0 is a subset: this never fails).
pub trait FromV0<T>: Sized {
    fn from_v0(v: T) -> Self;
}

/// Today's value → its format-1 message (format 1 says everything there is today).
pub trait ToV1<T> {
    fn to_v1(&self) -> T;
}

/// A format-1 message → today's type, or why it is not a valid one (an enum value this build
/// does not know, for instance).
pub trait FromV1<T>: Sized {
    fn from_v1(v: T) -> Result<Self, String>;
}

macro_rules! identity {
    ($($t:ty),*) => {$(
        impl ToV0<$t> for $t {
            fn to_v0(&self) -> Result<$t, Unrepresentable> { Ok(self.clone()) }
        }
        impl FromV0<$t> for $t {
            fn from_v0(v: $t) -> Self { v }
        }
        impl ToV1<$t> for $t {
            fn to_v1(&self) -> $t { self.clone() }
        }
        impl FromV1<$t> for $t {
            fn from_v1(v: $t) -> Result<Self, String> { Ok(v) }
        }
    )*};
}
identity!(String, u64, i64, u32, i32, bool, f64, Vec<u8>);

/// A string kept inline today ([`crate::cluster::Task`]'s) is a plain string in every format.
impl ToV0<String> for compact_str::CompactString {
    fn to_v0(&self) -> Result<String, Unrepresentable> {
        Ok(self.to_string())
    }
}
impl FromV0<String> for compact_str::CompactString {
    fn from_v0(v: String) -> Self {
        v.into()
    }
}
impl ToV1<String> for compact_str::CompactString {
    fn to_v1(&self) -> String {
        self.to_string()
    }
}
impl FromV1<String> for compact_str::CompactString {
    fn from_v1(v: String) -> Result<Self, String> {
        Ok(v.into())
    }
}

impl<A: ToV0<B>, B> ToV0<Vec<B>> for Vec<A> {
    fn to_v0(&self) -> Result<Vec<B>, Unrepresentable> {
        self.iter().map(ToV0::to_v0).collect()
    }
}
impl<A: FromV0<B>, B> FromV0<Vec<B>> for Vec<A> {
    fn from_v0(v: Vec<B>) -> Self {
        v.into_iter().map(A::from_v0).collect()
    }
}
impl<A: ToV1<B>, B> ToV1<Vec<B>> for Vec<A> {
    fn to_v1(&self) -> Vec<B> {
        self.iter().map(ToV1::to_v1).collect()
    }
}
impl<A: FromV1<B>, B> FromV1<Vec<B>> for Vec<A> {
    fn from_v1(v: Vec<B>) -> Result<Self, String> {
        v.into_iter().map(A::from_v1).collect()
    }
}

impl<A: ToV0<B>, B> ToV0<Vec<B>> for VecDeque<A> {
    fn to_v0(&self) -> Result<Vec<B>, Unrepresentable> {
        self.iter().map(ToV0::to_v0).collect()
    }
}
impl<A: FromV0<B>, B> FromV0<Vec<B>> for VecDeque<A> {
    fn from_v0(v: Vec<B>) -> Self {
        v.into_iter().map(A::from_v0).collect()
    }
}
impl<A: ToV1<B>, B> ToV1<Vec<B>> for VecDeque<A> {
    fn to_v1(&self) -> Vec<B> {
        self.iter().map(ToV1::to_v1).collect()
    }
}
impl<A: FromV1<B>, B> FromV1<Vec<B>> for VecDeque<A> {
    fn from_v1(v: Vec<B>) -> Result<Self, String> {
        v.into_iter().map(A::from_v1).collect()
    }
}

impl<A: ToV0<B>, B> ToV0<Option<B>> for Option<A> {
    fn to_v0(&self) -> Result<Option<B>, Unrepresentable> {
        self.as_ref().map(ToV0::to_v0).transpose()
    }
}
impl<A: FromV0<B>, B> FromV0<Option<B>> for Option<A> {
    fn from_v0(v: Option<B>) -> Self {
        v.map(A::from_v0)
    }
}
impl<A: ToV1<B>, B> ToV1<Option<B>> for Option<A> {
    fn to_v1(&self) -> Option<B> {
        self.as_ref().map(ToV1::to_v1)
    }
}
impl<A: FromV1<B>, B> FromV1<Option<B>> for Option<A> {
    fn from_v1(v: Option<B>) -> Result<Self, String> {
        v.map(A::from_v1).transpose()
    }
}

impl<K: Ord + Clone, A: ToV0<B>, B> ToV0<BTreeMap<K, B>> for BTreeMap<K, A> {
    fn to_v0(&self) -> Result<BTreeMap<K, B>, Unrepresentable> {
        self.iter()
            .map(|(k, v)| Ok((k.clone(), v.to_v0()?)))
            .collect()
    }
}
impl<K: Ord, A: FromV0<B>, B> FromV0<BTreeMap<K, B>> for BTreeMap<K, A> {
    fn from_v0(v: BTreeMap<K, B>) -> Self {
        v.into_iter().map(|(k, v)| (k, A::from_v0(v))).collect()
    }
}
impl<K: Ord + Clone, A: ToV1<B>, B> ToV1<BTreeMap<K, B>> for BTreeMap<K, A> {
    fn to_v1(&self) -> BTreeMap<K, B> {
        self.iter().map(|(k, v)| (k.clone(), v.to_v1())).collect()
    }
}
impl<K: Ord, A: FromV1<B>, B> FromV1<BTreeMap<K, B>> for BTreeMap<K, A> {
    fn from_v1(v: BTreeMap<K, B>) -> Result<Self, String> {
        v.into_iter()
            .map(|(k, v)| Ok((k, A::from_v1(v)?)))
            .collect()
    }
}

// The controller keeps its big maps persistent (`imbl::OrdMap`); their twins are plain maps.
impl<K: Ord + Clone, A: ToV0<B> + Clone, B> ToV0<BTreeMap<K, B>> for imbl::OrdMap<K, A> {
    fn to_v0(&self) -> Result<BTreeMap<K, B>, Unrepresentable> {
        self.iter()
            .map(|(k, v)| Ok((k.clone(), v.to_v0()?)))
            .collect()
    }
}
impl<K: Ord + Clone, A: FromV0<B> + Clone, B> FromV0<BTreeMap<K, B>> for imbl::OrdMap<K, A> {
    fn from_v0(v: BTreeMap<K, B>) -> Self {
        v.into_iter().map(|(k, v)| (k, A::from_v0(v))).collect()
    }
}
impl<K: Ord + Clone, A: ToV1<B> + Clone, B> ToV1<BTreeMap<K, B>> for imbl::OrdMap<K, A> {
    fn to_v1(&self) -> BTreeMap<K, B> {
        self.iter().map(|(k, v)| (k.clone(), v.to_v1())).collect()
    }
}
impl<K: Ord + Clone, A: FromV1<B> + Clone, B> FromV1<BTreeMap<K, B>> for imbl::OrdMap<K, A> {
    fn from_v1(v: BTreeMap<K, B>) -> Result<Self, String> {
        v.into_iter()
            .map(|(k, v)| Ok((k, A::from_v1(v)?)))
            .collect()
    }
}

impl<A: ToV0<B>, B> ToV0<Box<B>> for Box<A> {
    fn to_v0(&self) -> Result<Box<B>, Unrepresentable> {
        Ok(Box::new((**self).to_v0()?))
    }
}
impl<A: FromV0<B>, B> FromV0<Box<B>> for Box<A> {
    fn from_v0(v: Box<B>) -> Self {
        Box::new(A::from_v0(*v))
    }
}

impl<A: ToV0<B>, B> ToV0<B> for Arc<A> {
    fn to_v0(&self) -> Result<B, Unrepresentable> {
        (**self).to_v0()
    }
}
impl<A: FromV0<B>, B> FromV0<B> for Arc<A> {
    fn from_v0(v: B) -> Self {
        Arc::new(A::from_v0(v))
    }
}
impl<A: ToV1<B>, B> ToV1<B> for Arc<A> {
    fn to_v1(&self) -> B {
        (**self).to_v1()
    }
}
impl<A: FromV1<B>, B> FromV1<B> for Arc<A> {
    fn from_v1(v: B) -> Result<Self, String> {
        A::from_v1(v).map(Arc::new)
    }
}

impl<A1: ToV0<B1>, B1, A2: ToV0<B2>, B2> ToV0<(B1, B2)> for (A1, A2) {
    fn to_v0(&self) -> Result<(B1, B2), Unrepresentable> {
        Ok((self.0.to_v0()?, self.1.to_v0()?))
    }
}
impl<A1: FromV0<B1>, B1, A2: FromV0<B2>, B2> FromV0<(B1, B2)> for (A1, A2) {
    fn from_v0(v: (B1, B2)) -> Self {
        (A1::from_v0(v.0), A2::from_v0(v.1))
    }
}

impl ToV0<String> for crate::quantity::Quantity {
    fn to_v0(&self) -> Result<String, Unrepresentable> {
        Ok(self.0.clone())
    }
}
impl FromV0<String> for crate::quantity::Quantity {
    fn from_v0(v: String) -> Self {
        crate::quantity::Quantity(v)
    }
}
impl ToV1<String> for crate::quantity::Quantity {
    fn to_v1(&self) -> String {
        self.0.clone()
    }
}
impl FromV1<String> for crate::quantity::Quantity {
    fn from_v1(v: String) -> Result<Self, String> {
        Ok(crate::quantity::Quantity(v))
    }
}

/// Whether `v` is its type's default (a field format 0 can leave out).
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A struct and its format-0 twin with the same field names. Fields listed after `added` exist
/// only today (format 1 and later): format 0 reads them as their default, and a value other than
/// the default cannot be written in format 0.
#[macro_export]
#[doc(hidden)]
macro_rules! mirror_v0 {
    ($dom:ty => $old:ident { $($f:ident),* $(,)? } $(added { $($a:ident: $format:literal),* $(,)? })?) => {
        impl $crate::format::mirror::ToV0<$old> for $dom {
            fn to_v0(&self) -> Result<$old, $crate::format::Unrepresentable> {
                $($(
                    if !$crate::format::mirror::is_default(&self.$a) {
                        return Err($crate::format::Unrepresentable::new(
                            concat!(stringify!($old), ".", stringify!($a)), $format, 0,
                        ));
                    }
                )*)?
                Ok($old { $($f: $crate::format::mirror::ToV0::to_v0(&self.$f)?),* })
            }
        }
        impl $crate::format::mirror::FromV0<$old> for $dom {
            fn from_v0(v: $old) -> Self {
                Self {
                    $($f: $crate::format::mirror::FromV0::from_v0(v.$f),)*
                    $($($a: Default::default(),)*)?
                }
            }
        }
    };
}

/// A fieldless enum and its format-0 twin with the same variant names.
#[macro_export]
#[doc(hidden)]
macro_rules! mirror_v0_enum {
    ($dom:ty => $old:ident { $($v:ident),* $(,)? }) => {
        impl $crate::format::mirror::ToV0<$old> for $dom {
            fn to_v0(&self) -> Result<$old, $crate::format::Unrepresentable> {
                Ok(match self { $(Self::$v => $old::$v),* })
            }
        }
        impl $crate::format::mirror::FromV0<$old> for $dom {
            fn from_v0(v: $old) -> Self {
                match v { $($old::$v => Self::$v),* }
            }
        }
    };
}

/// A struct and its format-1 message with the same field names. A message field of the domain
/// type's struct value (not `Option`) travels as protobuf's optional message: a missing one reads
/// as the message's default.
#[macro_export]
#[doc(hidden)]
macro_rules! mirror_v1 {
    ($dom:ty => $msg:ident { $($f:ident),* $(,)? }) => {
        impl $crate::format::mirror::ToV1<$msg> for $dom {
            fn to_v1(&self) -> $msg {
                $msg { $($f: $crate::format::mirror::ToV1::to_v1(&self.$f),)* }
            }
        }
        impl $crate::format::mirror::FromV1<$msg> for $dom {
            fn from_v1(v: $msg) -> Result<Self, String> {
                Ok(Self { $($f: $crate::format::mirror::FromV1::from_v1(v.$f)
                    .map_err(|e| format!(concat!(stringify!($f), ": {}"), e))?,)* })
            }
        }
        impl $crate::format::mirror::ToV1<Option<$msg>> for $dom {
            fn to_v1(&self) -> Option<$msg> {
                Some($crate::format::mirror::ToV1::to_v1(self))
            }
        }
        impl $crate::format::mirror::FromV1<Option<$msg>> for $dom {
            fn from_v1(v: Option<$msg>) -> Result<Self, String> {
                $crate::format::mirror::FromV1::from_v1(v.unwrap_or_default())
            }
        }
    };
}

/// A fieldless enum and its protobuf enumeration (an `i32` on the wire), value by value.
#[macro_export]
#[doc(hidden)]
macro_rules! mirror_v1_enum {
    ($dom:ty { $($v:ident = $n:literal),* $(,)? }) => {
        impl $crate::format::mirror::ToV1<i32> for $dom {
            fn to_v1(&self) -> i32 {
                match self { $(Self::$v => $n),* }
            }
        }
        impl $crate::format::mirror::FromV1<i32> for $dom {
            fn from_v1(v: i32) -> Result<Self, String> {
                match v {
                    $($n => Ok(Self::$v),)*
                    other => Err(format!(concat!("{} is not a ", stringify!($dom), " this build knows"), other)),
                }
            }
        }
    };
}
