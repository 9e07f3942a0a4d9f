-- gifq--0.6.0--0.7.0.sql: recipient-choice rewards (sent, claimed, expired),
-- bulk sends, maintenance jobs scheduled with pg_cron, reporting views,
-- and cheaper event recording.

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.7.0'" to load this file. \quit
