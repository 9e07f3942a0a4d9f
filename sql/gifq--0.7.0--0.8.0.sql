-- gifq--0.7.0--0.8.0.sql: security and operations: gifq's roles and least
-- privilege, program scoping, the audit trail, erasure of members' personal
-- data, outbound safety and restores that give back what was dumped.

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.8.0'" to load this file. \quit
