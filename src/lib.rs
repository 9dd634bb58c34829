//! Frontpage: a headless JSON content API for news sites.

pub mod api;
pub mod app;
pub mod auth;
pub mod background;
pub mod commands;
pub mod config;
pub mod content;
pub mod db;
pub mod demo;
pub mod drain;
pub mod error;
pub mod http_cache;
pub mod memory;
pub mod observe;
pub mod openapi;
pub mod ranking;
pub mod reader;
pub mod recommend;
pub mod related;
pub mod route_table;
pub mod server;
pub mod state;
pub mod transfer;
