//! Intelligent customer service (智能客服) for kefu: everything the bot and agent assist
//! compute from text, offline and in pure Rust. No database, no network: the server and
//! the CLI hand in entries, examples and messages and store what comes out.

pub mod bot;
pub mod classifier;
pub mod complaint;
pub mod embed;
pub mod eval;
pub mod faq;
pub mod features;
pub mod group;
pub mod intent;
pub mod linear;
pub mod model_file;
pub mod normalize;
pub mod sentiment;
pub mod tokenize;
pub mod wordpiece;
