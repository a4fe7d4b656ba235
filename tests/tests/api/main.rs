//! The end-to-end suite, one module per area, linked into one test binary: each binary
//! links the whole API, so one per area cost a minute of linking and ~100 MB of disk each.
//! (`hygiene` stays its own binary: it installs a process-wide log subscriber.)

mod ads;
mod agents;
mod apps;
mod assets;
mod booking;
mod calendar;
mod caps;
mod cli;
mod console;
mod deleted_spaces;
mod deploy;
mod dispatcher;
mod documents;
mod events;
mod families;
mod family_checks;
mod faults;
mod forms;
mod http;
mod inbox;
mod knowledge;
mod llms;
mod lookups;
mod matrix;
mod mcp_tools;
mod meet;
mod messaging;
mod openapi;
mod pages;
mod phone;
mod properties;
mod purge;
mod read_only;
mod realtime;
mod seed;
mod social;
mod tables;
mod team;
mod usage;
mod webhooks;
mod whiteboards;
mod worker;
