-- test/lib/errors.sql: error helpers the pgTAP suites include (\ir) inside
-- their transaction.

-- run sql and undo whatever it did; returns 'no error', or the SQLSTATE,
-- the message and the detail of its error, "QG109: message / detail"
CREATE FUNCTION pg_temp.err(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
BEGIN
	BEGIN
		EXECUTE sql;
		RAISE EXCEPTION USING ERRCODE = 'ZZ999', MESSAGE = 'undo';
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
			det = PG_EXCEPTION_DETAIL;
		IF st = 'ZZ999' THEN
			RETURN 'no error';
		END IF;
		RETURN st || ': ' || msg || ' / ' || coalesce(det, '');
	END;
END $$;

-- the SQLSTATE of sql's error, or 'no error'; sql's effects are undone
CREATE FUNCTION pg_temp.code(sql text) RETURNS text
LANGUAGE sql AS $$ SELECT split_part(pg_temp.err(sql), ':', 1) $$;
