//! JSON read and written by hand on the request path, where serde_json's
//! general machinery cost more than the gateway's own work: the `usage`
//! field of a reply found without parsing the rest ([`field`]), and the
//! usage record's line written field by field ([`line`]). Both are tested
//! against serde_json's own reading and writing.

pub mod field;
pub mod line;
mod swar;
