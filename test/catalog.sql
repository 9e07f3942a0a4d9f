-- catalog.sql: pgTAP suite for the gift-card catalog (0.3.0): loading a
-- provider catalog (validation, all or nothing, discontinuation,
-- reactivation, the catalog.changed event, the etag), gifq_catalog
-- (filters, accent- and case-insensitive search, ordering by placement
-- and popularity), gifq_feature_brand, gifq_alternatives and the helpers
-- gifq.fold, gifq.offers, gifq.nearest and gifq.popularity.  Every error
-- path is checked by its SQLSTATE (and its message where it is the
-- contract):
--   QG217 invalid catalog        QG201 unknown brand
--   QG204 amount in another currency than the brand's
--   QG115 invalid parameter (country, sponsored without a rank)
--   QG004 invalid currency code
-- Everything runs in one transaction, rolled back at the end; now() is
-- fixed in it, so "discontinued now" and "ordered now" are exact.
BEGIN;
SELECT plan(188);

SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';

------------------------------------------------------------------------
-- Helpers (pg_temp: gone with the session, and rolled back anyway)
------------------------------------------------------------------------

-- ids of what the suite creates, by name
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint NOT NULL);

CREATE FUNCTION pg_temp.keep(n text, v bigint) RETURNS bigint
LANGUAGE sql AS $$
	INSERT INTO ids VALUES (n, v)
	ON CONFLICT (name) DO UPDATE SET id = EXCLUDED.id RETURNING id
$$;

-- the id kept under n; an unknown name is an error, never a NULL that
-- could make a test pass by accident
CREATE FUNCTION pg_temp.id(n text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE r bigint;
BEGIN
	SELECT id INTO STRICT r FROM ids WHERE name = n;
	RETURN r;
END $$;

-- a provider brand: a US retail brand selling 30.00 USD cards, in stock,
-- with the fields of extra added or replaced
CREATE FUNCTION pg_temp.b(id text, name text, extra jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('id', id, 'name', name, 'country', 'US',
		'currency', 'USD', 'categories', jsonb_build_array('retail'),
		'denominations', jsonb_build_array(30), 'in_stock', true) || extra
$$;

-- the suite's provider brands by id; catalogs are built from them
CREATE TEMP TABLE br (id text PRIMARY KEY, doc jsonb NOT NULL);

-- a catalog response listing the brands ids (in that order) and an etag
-- (NULL: no "etag" key at all)
CREATE FUNCTION pg_temp.cat(brand_ids text[], etag text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	brands jsonb := '[]';
	i text;
	d jsonb;
BEGIN
	FOREACH i IN ARRAY brand_ids LOOP
		SELECT doc INTO STRICT d FROM br WHERE id = i;
		brands := brands || jsonb_build_array(d);
	END LOOP;
	IF etag IS NULL THEN
		RETURN jsonb_build_object('brands', brands);
	END IF;
	RETURN jsonb_build_object('brands', brands, 'etag', etag);
END $$;

-- the SQL of a load of catalog c, for throws_ok
CREATE FUNCTION pg_temp.load_sql(c jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT format('SELECT gifq_catalog_load(%L::jsonb)', c) $$;

-- the SQL of a load of the example catalog with one more brand, bad-brand
-- extra applied to a valid brand "bad"; the valid brand comes first, so
-- the error must name the bad one
CREATE FUNCTION pg_temp.bad(extra jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT pg_temp.load_sql(jsonb_build_object('brands', jsonb_build_array(
		(SELECT doc FROM br WHERE id = 'amazon-us'),
		pg_temp.b('bad', 'Bad', extra)), 'etag', 'bad'))
$$;

-- the payloads of the catalog.changed events, oldest first
CREATE FUNCTION pg_temp.events() RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
	SELECT payload FROM gifq.outbox WHERE event_type = 'catalog.changed' ORDER BY id
$$;

-- the ids gifq_catalog returns for these filters, in its order
CREATE FUNCTION pg_temp.ids(country text DEFAULT NULL, category text DEFAULT NULL,
	currency text DEFAULT NULL, search text DEFAULT NULL) RETURNS text[]
LANGUAGE sql STABLE AS $$
	SELECT coalesce(array_agg(brand_id), '{}') FROM gifq_catalog(country, category, currency, search)
$$;

-- gifq_alternatives as text rows "brand amount reason", in its order
CREATE FUNCTION pg_temp.alt(brand text, amount gifq_money) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
	SELECT format('%s %s %s', a.brand_id, a.amount, a.reason) FROM gifq_alternatives(brand, amount) a
$$;

------------------------------------------------------------------------
-- the API is there, with the contract's signatures
------------------------------------------------------------------------

SELECT function_returns('gifq_catalog_load', ARRAY['jsonb'], 'integer',
	'api: gifq_catalog_load(jsonb) returns integer');
SELECT function_returns('gifq_feature_brand', ARRAY['text', 'integer', 'boolean'], 'void',
	'api: gifq_feature_brand(text, integer, boolean) returns void');
SELECT is(
	(SELECT pg_get_function_arguments(p.oid) || ' -> ' || pg_get_function_result(p.oid)
	FROM pg_proc p WHERE p.oid = 'gifq_catalog(text,text,text,text)'::regprocedure),
	'country text DEFAULT NULL::text, category text DEFAULT NULL::text, currency text DEFAULT NULL::text, search text DEFAULT NULL::text -> TABLE(brand_id text, name text, country text, currency text, categories text[], denominations gifq_money[], min_value gifq_money, max_value gifq_money, in_stock boolean, image_url text, redemption_instructions text, featured_rank integer, sponsored boolean, popularity bigint, discount_pct numeric)',
	'api: gifq_catalog takes country, category, currency, search and returns the contract''s columns, then featured_rank, sponsored, popularity, discount_pct');
SELECT is(pg_get_function_result('gifq_alternatives(text,gifq_money)'::regprocedure),
	'TABLE(brand_id text, amount gifq_money, reason text)',
	'api: gifq_alternatives returns brand_id, amount, reason');

------------------------------------------------------------------------
-- gifq.fold: the search spelling of a name
------------------------------------------------------------------------

SELECT is(gifq.fold('Tésco'), 'tesco', 'fold: accents are dropped and letters lower-cased');
SELECT is(gifq.fold('CAFÉ CRÈME'), 'cafe creme', 'fold: upper-case accented letters lose their accent too');
SELECT is(gifq.fold('Straße'), 'strasse', 'fold: ß is spelled ss');
SELECT is(gifq.fold('Øresund Łódź Đakovo'), 'oresund lodz dakovo', 'fold: ø, ł and đ (no decomposition) become o, l, d');
SELECT is(gifq.fold('Ærø Œuvre'), 'aero oeuvre', 'fold: æ and œ become ae and oe');
SELECT is(gifq.fold('ﬁne Ｓｕｓｈｉ'), 'fine sushi', 'fold: compatibility forms (ligature, full width) decompose (NFKD)');
SELECT is(gifq.fold(NULL), NULL, 'fold: NULL in, NULL out');

------------------------------------------------------------------------
-- gifq_catalog_load: the provider's example response
------------------------------------------------------------------------

-- PROVIDER_API.md, section Catalog, verbatim
CREATE TEMP TABLE example AS SELECT $json${
  "brands": [
    {
      "id": "amazon-us",
      "name": "Amazon",
      "country": "US",
      "currency": "USD",
      "categories": ["retail"],
      "denominations": [10, 25, 50, 100, 500],
      "min_value": null,
      "max_value": null,
      "discount_pct": 3.0,
      "in_stock": true,
      "image_url": "https://cdn.example.com/amazon-logo.png",
      "redemption_instructions": "Redeem at amazon.com/gc/redeem",
      "updated_at": "2026-11-25T10:00:00Z"
    }
  ],
  "etag": "c-2026-11-25T10:00:00Z"
}$json$::jsonb AS doc;
INSERT INTO br SELECT 'amazon-us', doc->'brands'->0 FROM example;

SELECT is_empty('SELECT * FROM gifq.brands', 'load: no brands before the first load');
SELECT is(gifq_catalog_load((SELECT doc FROM example)), 1, 'load: the provider''s example adds one brand');
SELECT results_eq(
	$$SELECT id, name, search_name, country, currency, categories, denominations,
		min_value, max_value, discount_pct, in_stock, image_url, redemption_instructions,
		provider_updated_at, featured_rank, sponsored, discontinued_at
	FROM gifq.brands$$,
	$$VALUES ('amazon-us', 'Amazon', 'amazon', 'US', 'USD', '{retail}'::text[],
		'{1000,2500,5000,10000,50000}'::bigint[], NULL::bigint, NULL::bigint, 3.0::numeric,
		true, 'https://cdn.example.com/amazon-logo.png', 'Redeem at amazon.com/gc/redeem',
		'2026-11-25 10:00:00+00'::timestamptz, NULL::integer, false, NULL::timestamptz)$$,
	'load: every field of the example is stored, money in minor units');
SELECT results_eq(
	$$SELECT etag, loaded_at, brands FROM gifq.catalog_state$$,
	$$VALUES ('c-2026-11-25T10:00:00Z', now(), 1)$$,
	'load: the etag, the time and the number of brands are kept in gifq.catalog_state');
SELECT results_eq(
	$$SELECT program_id, payload FROM gifq.outbox WHERE event_type = 'catalog.changed'$$,
	$$VALUES (NULL::bigint, '{"added": ["amazon-us"], "changed": [], "discontinued": [],
		"etag": "c-2026-11-25T10:00:00Z"}'::jsonb)$$,
	'load: one catalog.changed event, of no program, lists the added brand and the etag');
SELECT results_eq(
	$$SELECT brand_id, name, country, currency, categories, denominations::text, min_value,
		max_value, in_stock, image_url, redemption_instructions, featured_rank, sponsored,
		popularity, discount_pct
	FROM gifq_catalog()$$,
	$$VALUES ('amazon-us', 'Amazon', 'US', 'USD', '{retail}'::text[],
		'{"10.00 USD","25.00 USD","50.00 USD","100.00 USD","500.00 USD"}', NULL::gifq_money,
		NULL::gifq_money, true, 'https://cdn.example.com/amazon-logo.png',
		'Redeem at amazon.com/gc/redeem', NULL::integer, false, 0::bigint, 3.0::numeric)$$,
	'catalog: the example brand as gifq_catalog shows it, denominations as gifq_money');
SELECT is(gifq_catalog_load((SELECT doc FROM example)), 0, 'load: the same catalog again changes nothing');
SELECT is((SELECT count(*) FROM pg_temp.events()), 1::bigint, 'load: and emits no event');

------------------------------------------------------------------------
-- gifq_catalog_load: refused catalogs (QG217), nothing loaded
------------------------------------------------------------------------

CREATE TEMP TABLE snap_brands AS SELECT * FROM gifq.brands;
CREATE TEMP TABLE snap_state AS SELECT * FROM gifq.catalog_state;
CREATE TEMP TABLE snap_outbox AS SELECT * FROM gifq.outbox;

-- the shape of the response
SELECT throws_ok('SELECT gifq_catalog_load(NULL)', 'QG217',
	'invalid catalog: NULL has no "brands" array', 'refused: NULL is QG217');
SELECT throws_ok(pg_temp.load_sql('[]'), 'QG217',
	'invalid catalog: [] has no "brands" array', 'refused: an array instead of an object is QG217');
SELECT throws_ok(pg_temp.load_sql('{"etag": "x"}'), 'QG217',
	'invalid catalog: {"etag": "x"} has no "brands" array', 'refused: an object without "brands" is QG217');
SELECT throws_ok(pg_temp.load_sql('{"brands": {}}'), 'QG217',
	'invalid catalog: {"brands": {}} has no "brands" array', 'refused: "brands" not an array is QG217');
SELECT throws_ok(pg_temp.load_sql('{"brands": [], "etag": "x"}'), 'QG217',
	'invalid catalog: the "brands" array is empty, which would discontinue every brand',
	'refused: an empty catalog is QG217, not a discontinuation of everything');
SELECT throws_ok(pg_temp.load_sql(jsonb_set((SELECT doc FROM example), '{etag}', '5')), 'QG217',
	'invalid catalog: "etag" 5 is not a string', 'refused: a numeric etag is QG217');
SELECT throws_ok(pg_temp.load_sql('{"brands": [1]}'), 'QG217',
	'invalid catalog: brand 1 is not an object', 'refused: a brand that is not an object is QG217');
SELECT throws_ok(pg_temp.load_sql('{"brands": [{"name": "x"}]}'), 'QG217',
	'invalid catalog: brand without a valid "id": {"name": "x"}', 'refused: a brand without an id is QG217');
SELECT throws_ok(pg_temp.load_sql('{"brands": [{"id": ""}]}'), 'QG217',
	'invalid catalog: brand without a valid "id": {"id": ""}', 'refused: an empty id is QG217');
SELECT throws_ok(pg_temp.load_sql('{"brands": [{"id": 5}]}'), 'QG217',
	'invalid catalog: brand without a valid "id": {"id": 5}', 'refused: a numeric id is QG217');
SELECT throws_ok(pg_temp.load_sql(jsonb_build_object('brands', jsonb_build_array(
	pg_temp.b(repeat('x', 201), 'X')))), 'QG217', NULL, 'refused: a 201-character id is QG217');

-- field by field, naming the brand
SELECT throws_ok(pg_temp.bad('{"colour": "red"}'), 'QG217',
	'invalid catalog: brand "bad": unknown field "colour"', 'refused: an unknown field is QG217 naming brand and field');
SELECT throws_ok(pg_temp.bad('{"name": "   "}'), 'QG217',
	'invalid catalog: brand "bad": "name" "   " is not a name', 'refused: a blank name is QG217');
SELECT throws_ok(pg_temp.bad('{"name": 5}'), 'QG217',
	'invalid catalog: brand "bad": "name" 5 is not a name', 'refused: a numeric name is QG217');
SELECT throws_ok(pg_temp.load_sql(jsonb_build_object('brands', jsonb_build_array(
	pg_temp.b('bad', 'Bad') - 'name'))), 'QG217',
	'invalid catalog: brand "bad": "name" null is not a name', 'refused: a missing name is QG217');
SELECT throws_ok(pg_temp.bad('{"country": "us"}'), 'QG217',
	'invalid catalog: brand "bad": "country" "us" is not an ISO 3166-1 alpha-2 code', 'refused: a lower-case country is QG217');
SELECT throws_ok(pg_temp.bad('{"country": "USA"}'), 'QG217',
	'invalid catalog: brand "bad": "country" "USA" is not an ISO 3166-1 alpha-2 code', 'refused: a three-letter country is QG217');
SELECT throws_ok(pg_temp.bad('{"currency": "usd"}'), 'QG217',
	'invalid catalog: brand "bad": "currency" "usd" is not an ISO 4217 code', 'refused: a lower-case currency is QG217');
SELECT throws_ok(pg_temp.bad('{"currency": "PTS1"}'), 'QG217',
	'invalid catalog: brand "bad": "currency" "PTS1" is not an ISO 4217 code', 'refused: a currency that is not three letters is QG217');
SELECT throws_ok(pg_temp.bad('{"categories": "retail"}'), 'QG217',
	'invalid catalog: brand "bad": "categories" "retail" is not an array of names', 'refused: categories as a string is QG217');
SELECT throws_ok(pg_temp.bad('{"categories": ["retail", 5]}'), 'QG217',
	'invalid catalog: brand "bad": "categories" ["retail", 5] is not an array of names', 'refused: a numeric category is QG217');
SELECT throws_ok(pg_temp.bad('{"categories": [""]}'), 'QG217',
	'invalid catalog: brand "bad": "categories" [""] is not an array of names', 'refused: an empty category is QG217');
SELECT throws_ok(pg_temp.bad('{"denominations": [10, 0]}'), 'QG217',
	'invalid catalog: brand "bad": "denominations" [10, 0] is not a list of positive amounts in USD', 'refused: a zero denomination is QG217');
SELECT throws_ok(pg_temp.bad('{"denominations": [-5]}'), 'QG217',
	'invalid catalog: brand "bad": "denominations" [-5] is not a list of positive amounts in USD', 'refused: a negative denomination is QG217');
SELECT throws_ok(pg_temp.bad('{"denominations": ["10"]}'), 'QG217',
	'invalid catalog: brand "bad": "denominations" ["10"] is not a list of positive amounts in USD', 'refused: a denomination as a string is QG217');
SELECT throws_ok(pg_temp.bad('{"denominations": 10}'), 'QG217',
	'invalid catalog: brand "bad": "denominations" 10 is not a list of positive amounts in USD', 'refused: denominations not an array is QG217');
SELECT throws_ok(pg_temp.bad('{"denominations": [10.005]}'), 'QG217',
	'invalid catalog: brand "bad": "denominations" [10.005] is not a list of positive amounts in USD', 'refused: 10.005 USD (a tenth of a cent) is QG217');
SELECT throws_ok(pg_temp.bad('{"currency": "JPY", "denominations": [1000.5]}'), 'QG217',
	'invalid catalog: brand "bad": "denominations" [1000.5] is not a list of positive amounts in JPY', 'refused: 1000.5 JPY (yen have no decimals) is QG217');
SELECT throws_ok(pg_temp.bad('{"denominations": [1e30]}'), 'QG217', NULL,
	'refused: a denomination out of gifq_money''s range is QG217');
SELECT throws_ok(pg_temp.bad('{"denominations": []}'), 'QG217',
	'invalid catalog: brand "bad": neither "denominations" nor both "min_value" and "max_value"', 'refused: no denominations and no range is QG217');
SELECT throws_ok(pg_temp.bad('{"denominations": null, "min_value": 5}'), 'QG217',
	'invalid catalog: brand "bad": neither "denominations" nor both "min_value" and "max_value"', 'refused: a range without max_value is QG217');
SELECT throws_ok(pg_temp.bad('{"min_value": 5, "max_value": 50}'), 'QG217',
	'invalid catalog: brand "bad": both "denominations" and a "min_value"/"max_value" range', 'refused: denominations and a range is QG217');
SELECT throws_ok(pg_temp.bad('{"denominations": null, "min_value": 50, "max_value": 5}'), 'QG217',
	'invalid catalog: brand "bad": "min_value" 50 is above "max_value" 5', 'refused: min_value above max_value is QG217');
SELECT throws_ok(pg_temp.bad('{"denominations": null, "min_value": 0, "max_value": 5}'), 'QG217',
	'invalid catalog: brand "bad": "min_value" 0 is not a positive amount in USD', 'refused: a zero min_value is QG217');
SELECT throws_ok(pg_temp.bad('{"denominations": null, "min_value": 1, "max_value": "5"}'), 'QG217',
	'invalid catalog: brand "bad": "max_value" "5" is not a positive amount in USD', 'refused: max_value as a string is QG217');
SELECT throws_ok(pg_temp.bad('{"denominations": null, "min_value": 1, "max_value": 5.001}'), 'QG217',
	'invalid catalog: brand "bad": "max_value" 5.001 is not a positive amount in USD', 'refused: max_value 5.001 USD is QG217');
SELECT throws_ok(pg_temp.bad('{"discount_pct": 100}'), 'QG217',
	'invalid catalog: brand "bad": "discount_pct" 100 is not a percentage from 0 to below 100', 'refused: discount_pct 100 is QG217');
SELECT throws_ok(pg_temp.bad('{"discount_pct": -0.5}'), 'QG217',
	'invalid catalog: brand "bad": "discount_pct" -0.5 is not a percentage from 0 to below 100', 'refused: a negative discount_pct is QG217');
SELECT throws_ok(pg_temp.bad('{"discount_pct": "3"}'), 'QG217',
	'invalid catalog: brand "bad": "discount_pct" "3" is not a percentage from 0 to below 100', 'refused: discount_pct as a string is QG217');
SELECT throws_ok(pg_temp.load_sql(jsonb_build_object('brands', jsonb_build_array(
	pg_temp.b('bad', 'Bad') - 'in_stock'))), 'QG217',
	'invalid catalog: brand "bad": "in_stock" null is not true or false', 'refused: in_stock is required');
SELECT throws_ok(pg_temp.bad('{"in_stock": "true"}'), 'QG217',
	'invalid catalog: brand "bad": "in_stock" "true" is not true or false', 'refused: in_stock as a string is QG217');
SELECT throws_ok(pg_temp.bad('{"image_url": 5}'), 'QG217',
	'invalid catalog: brand "bad": "image_url" 5 is not a string', 'refused: a numeric image_url is QG217');
SELECT throws_ok(pg_temp.bad('{"redemption_instructions": true}'), 'QG217',
	'invalid catalog: brand "bad": "redemption_instructions" true is not a string', 'refused: boolean redemption_instructions is QG217');
SELECT throws_ok(pg_temp.bad('{"updated_at": 5}'), 'QG217',
	'invalid catalog: brand "bad": "updated_at" 5 is not a string', 'refused: a numeric updated_at is QG217');
SELECT throws_ok(pg_temp.bad('{"updated_at": "yesterday-ish"}'), 'QG217',
	'invalid catalog: brand "bad": "updated_at" "yesterday-ish" is not a timestamp', 'refused: an updated_at that is no timestamp is QG217');
SELECT throws_ok(pg_temp.bad('{"updated_at": "2026-13-45T10:00:00Z"}'), 'QG217',
	'invalid catalog: brand "bad": "updated_at" "2026-13-45T10:00:00Z" is not a timestamp', 'refused: an updated_at out of range is QG217');
SELECT throws_ok(pg_temp.bad('{"updated_at": "2026-11-25T10:00:00 Mars/Base"}'), 'QG217',
	'invalid catalog: brand "bad": "updated_at" "2026-11-25T10:00:00 Mars/Base" is not a timestamp',
	'refused: an updated_at with an unknown time zone is QG217');
SELECT throws_ok(pg_temp.bad('{"updated_at": "now"}'), 'QG217',
	'invalid catalog: brand "bad": "updated_at" "now" is not a timestamp',
	'refused: updated_at "now", which would change at every load, is QG217');
SELECT throws_ok(pg_temp.bad('{"updated_at": "infinity"}'), 'QG217',
	'invalid catalog: brand "bad": "updated_at" "infinity" is not a timestamp',
	'refused: updated_at "infinity" is QG217');
SELECT throws_ok(pg_temp.load_sql(jsonb_build_object('brands', jsonb_build_array(
	pg_temp.b('twice', 'Twice'), (SELECT doc FROM br WHERE id = 'amazon-us'),
	pg_temp.b('twice', 'Twice again')))), 'QG217',
	'invalid catalog: brand "twice": listed more than once', 'refused: a brand listed twice is QG217');

-- all or nothing: a catalog that would add, change and discontinue, but
-- whose last brand is bad
SELECT throws_ok(pg_temp.load_sql(jsonb_build_object('brands', jsonb_build_array(
	pg_temp.b('new-1', 'New One'), pg_temp.b('new-2', 'New Two'),
	pg_temp.b('new-3', 'New Three', '{"in_stock": "yes"}')), 'etag', 'all-or-nothing')), 'QG217',
	'invalid catalog: brand "new-3": "in_stock" "yes" is not true or false',
	'refused: a catalog whose last brand is bad is QG217');
SELECT set_eq('SELECT * FROM gifq.brands', 'SELECT * FROM snap_brands',
	'refused: after every refused load the brands are as they were');
SELECT set_eq('SELECT * FROM gifq.catalog_state', 'SELECT * FROM snap_state',
	'refused: the etag and catalog state are as they were');
SELECT set_eq('SELECT id, program_id, event_type, payload FROM gifq.outbox',
	'SELECT id, program_id, event_type, payload FROM snap_outbox',
	'refused: no event was emitted');

-- what is accepted at the edges (one brand, checked without loading it)
SELECT is(length((gifq.catalog_brand(pg_temp.b(repeat('x', 200), 'X'))).id), 200,
	'brand: a 200-character id is accepted');
SELECT is((gifq.catalog_brand(pg_temp.b('k', 'K', '{"currency": "KWD", "denominations": [10.005]}'))).denominations,
	'{10005}'::bigint[], 'brand: 10.005 KWD (three decimals) is accepted, in fils');
SELECT is((gifq.catalog_brand(pg_temp.b('k', 'K', '{"denominations": [10.000, 10, 5]}'))).denominations,
	'{500,1000}'::bigint[], 'brand: denominations are deduplicated and sorted; 10.000 USD is 10 USD');
SELECT results_eq(
	$$SELECT (x).denominations, (x).min_value, (x).max_value FROM (SELECT gifq.catalog_brand(
		pg_temp.b('k', 'K', '{"denominations": [], "min_value": 25, "max_value": 25}')) x) s$$,
	$$VALUES (NULL::bigint[], 2500::bigint, 2500::bigint)$$,
	'brand: an empty denominations list with a range is a range brand; min_value may equal max_value');
SELECT is((gifq.catalog_brand(pg_temp.b('k', 'K', '{"discount_pct": 99.99}'))).discount_pct, 99.99,
	'brand: discount_pct 99.99 is accepted');
SELECT is((gifq.catalog_brand(pg_temp.b('k', 'K'))).discount_pct, 0::numeric,
	'brand: discount_pct defaults to 0');
SELECT is((gifq.catalog_brand(pg_temp.b('k', 'K', '{"categories": []}'))).categories, '{}'::text[],
	'brand: no categories is accepted');
SELECT results_eq(
	$$SELECT (x).image_url, (x).redemption_instructions, (x).provider_updated_at FROM (SELECT
		gifq.catalog_brand(pg_temp.b('k', 'K', '{"image_url": null, "redemption_instructions": null,
		"updated_at": null}')) x) s$$,
	$$VALUES (NULL::text, NULL::text, NULL::timestamptz)$$,
	'brand: image_url, redemption_instructions and updated_at may be null');

------------------------------------------------------------------------
-- gifq_catalog_load: a catalog of several brands
------------------------------------------------------------------------

INSERT INTO br VALUES
	('target-us', pg_temp.b('target-us', 'Target', '{"categories": ["Retail"], "denominations": [25, 50, 100]}')),
	('walmart-us', pg_temp.b('walmart-us', 'Walmart', '{"categories": ["retail", "grocery"],
		"denominations": null, "min_value": 20, "max_value": 200}')),
	('bestbuy-us', pg_temp.b('bestbuy-us', 'Best Buy', '{"categories": ["retail", "electronics"],
		"denominations": [15, 40]}')),
	('oos-us', pg_temp.b('oos-us', 'Sold Out Store', '{"denominations": [30, 50], "in_stock": false}')),
	('gap-us', pg_temp.b('gap-us', 'Gap', '{"categories": ["fashion"], "updated_at": "2026-01-01T00:00:00Z"}')),
	('cadretail-us', pg_temp.b('cadretail-us', 'Loonie Mart', '{"currency": "CAD"}')),
	('dutyfree-ca', pg_temp.b('dutyfree-ca', 'Duty Free', '{"country": "CA"}')),
	('tesco-gb', pg_temp.b('tesco-gb', '  Tésco  ', '{"country": "GB", "currency": "GBP",
		"categories": ["Grocery", "Retail", "grocery"], "denominations": [50, 10, 20, 10]}')),
	('cafe-fr', pg_temp.b('cafe-fr', 'Café Crème', '{"country": "FR", "currency": "EUR",
		"categories": ["Food"], "denominations": null, "min_value": 5, "max_value": 150,
		"image_url": null, "redemption_instructions": "Show the code at the till"}')),
	('kaufhaus-de', pg_temp.b('kaufhaus-de', 'Königstraße Kaufhaus', '{"country": "DE",
		"currency": "EUR", "denominations": [25.5, 50]}')),
	('sushi-jp', pg_temp.b('sushi-jp', 'Zen Ｓｕｓｈｉ', '{"country": "JP", "currency": "JPY",
		"categories": ["food"], "denominations": [1000, 5000]}')),
	('gone-us', pg_temp.b('gone-us', 'Gone Goods', '{"denominations": [30, 60]}'));

CREATE TEMP TABLE v2 (ids text[]);
INSERT INTO v2 VALUES ('{amazon-us,target-us,walmart-us,bestbuy-us,oos-us,gap-us,cadretail-us,dutyfree-ca,tesco-gb,cafe-fr,kaufhaus-de,sushi-jp,gone-us}');

SELECT is(gifq_catalog_load(pg_temp.cat((SELECT ids FROM v2), 'v2')), 12,
	'load v2: twelve brands added, the unchanged example brand not counted');
SELECT results_eq($$SELECT * FROM pg_temp.events()$$,
	$$VALUES ('{"added": ["amazon-us"], "changed": [], "discontinued": [], "etag": "c-2026-11-25T10:00:00Z"}'::jsonb),
		('{"added": ["bestbuy-us", "cadretail-us", "cafe-fr", "dutyfree-ca", "gap-us", "gone-us",
			"kaufhaus-de", "oos-us", "sushi-jp", "target-us", "tesco-gb", "walmart-us"],
			"changed": [], "discontinued": [], "etag": "v2"}'::jsonb)$$,
	'load v2: one more event, listing the added brands sorted by id');
SELECT results_eq($$SELECT etag, brands FROM gifq.catalog_state$$, $$VALUES ('v2', 13)$$,
	'load v2: the state has the new etag and 13 brands');
SELECT results_eq(
	$$SELECT name, search_name, categories, denominations FROM gifq.brands WHERE id = 'tesco-gb'$$,
	$$VALUES ('Tésco', 'tesco', '{grocery,retail}'::text[], '{1000,2000,5000}'::bigint[])$$,
	'load v2: the name is trimmed, categories lower-cased, deduplicated and sorted, denominations deduplicated and sorted');
SELECT results_eq(
	$$SELECT categories, denominations, min_value, max_value, discount_pct, image_url,
		redemption_instructions, provider_updated_at FROM gifq.brands WHERE id = 'cafe-fr'$$,
	$$VALUES ('{food}'::text[], NULL::bigint[], 500::bigint, 15000::bigint, 0::numeric, NULL::text,
		'Show the code at the till', NULL::timestamptz)$$,
	'load v2: a range brand stores min and max in cents and no denominations');
SELECT is((SELECT denominations FROM gifq.brands WHERE id = 'kaufhaus-de'), '{2550,5000}'::bigint[],
	'load v2: 25.5 EUR is 2550 cents');
SELECT is((SELECT denominations FROM gifq.brands WHERE id = 'sushi-jp'), '{1000,5000}'::bigint[],
	'load v2: yen denominations are whole yen');
SELECT is((SELECT provider_updated_at FROM gifq.brands WHERE id = 'gap-us'), '2026-01-01 00:00:00+00'::timestamptz,
	'load v2: updated_at is kept as provider_updated_at');
SELECT is((SELECT count(*) FROM gifq.brands WHERE discontinued_at IS NULL), 13::bigint,
	'load v2: 13 active brands');

------------------------------------------------------------------------
-- gifq_catalog: filters and search (no placements, no orders yet)
------------------------------------------------------------------------

SELECT is(pg_temp.ids(),
	'{amazon-us,bestbuy-us,cafe-fr,dutyfree-ca,gap-us,gone-us,kaufhaus-de,cadretail-us,oos-us,target-us,tesco-gb,walmart-us,sushi-jp}'::text[],
	'catalog: every active brand, by name when none is featured or ordered (out-of-stock ones included)');
SELECT is(pg_temp.ids('US'),
	'{amazon-us,bestbuy-us,gap-us,gone-us,cadretail-us,oos-us,target-us,walmart-us}'::text[],
	'catalog: country US');
SELECT is(pg_temp.ids('ZZ'), '{}'::text[], 'catalog: a well-formed country with no brands gives no rows');
SELECT is(pg_temp.ids(category => 'grocery'), '{tesco-gb,walmart-us}'::text[],
	'catalog: category grocery');
SELECT is(pg_temp.ids('US', 'RETAIL', 'USD'),
	'{amazon-us,bestbuy-us,gone-us,oos-us,target-us,walmart-us}'::text[],
	'catalog: country, category (any case) and currency together');
SELECT is(pg_temp.ids(currency => 'EUR'), '{cafe-fr,kaufhaus-de}'::text[], 'catalog: currency EUR');
SELECT is(pg_temp.ids(currency => 'CAD'), '{cadretail-us}'::text[], 'catalog: currency CAD');
SELECT is(pg_temp.ids(search => 'tesco'), '{tesco-gb}'::text[], 'search: "tesco" finds "Tésco"');
SELECT is(pg_temp.ids(search => 'TÉSCO'), '{tesco-gb}'::text[], 'search: "TÉSCO" finds "Tésco"');
SELECT is(pg_temp.ids(search => 'CAFE'), '{cafe-fr}'::text[], 'search: "CAFE" finds "Café Crème"');
SELECT is(pg_temp.ids(search => 'é cr'), '{cafe-fr}'::text[], 'search: a substring across words, with an accent');
SELECT is(pg_temp.ids(search => 'strasse'), '{kaufhaus-de}'::text[], 'search: "strasse" finds "Königstraße"');
SELECT is(pg_temp.ids(search => 'STRAßE'), '{kaufhaus-de}'::text[], 'search: "STRAßE" finds "Königstraße"');
SELECT is(pg_temp.ids(search => 'konigs'), '{kaufhaus-de}'::text[], 'search: "konigs" finds "Königstraße"');
SELECT is(pg_temp.ids(search => 'sushi'), '{sushi-jp}'::text[], 'search: "sushi" finds the full-width "Ｓｕｓｈｉ"');
SELECT is(pg_temp.ids(search => '  gap '), '{gap-us}'::text[], 'search: surrounding spaces are trimmed');
SELECT is(pg_temp.ids(search => 'G'), '{gap-us,gone-us,kaufhaus-de,target-us}'::text[], 'search: a letter anywhere in the name');
SELECT is(pg_temp.ids(search => '%'), '{}'::text[], 'search: % is a literal, not a wildcard');
SELECT is(pg_temp.ids('FR', search => 'tesco'), '{}'::text[], 'search: combined with a filter');
SELECT results_eq(
	$$SELECT denominations, min_value::text, max_value::text FROM gifq_catalog(search => 'café')$$,
	$$VALUES (NULL::gifq_money[], '5.00 EUR', '150.00 EUR')$$,
	'catalog: a range brand has NULL denominations and its min and max as gifq_money');
SELECT is((SELECT denominations::text FROM gifq_catalog(country => 'JP')), '{"1000 JPY","5000 JPY"}',
	'catalog: yen denominations');
SELECT is((SELECT denominations::text FROM gifq_catalog(country => 'DE')), '{"25.50 EUR","50.00 EUR"}',
	'catalog: euro denominations with cents');
SELECT throws_ok($$SELECT * FROM gifq_catalog('us')$$, 'QG115', 'invalid country "us"',
	'catalog: a lower-case country is QG115');
SELECT throws_ok($$SELECT * FROM gifq_catalog('USA')$$, 'QG115', 'invalid country "USA"',
	'catalog: a three-letter country is QG115');
SELECT throws_ok($$SELECT * FROM gifq_catalog(currency => 'usd')$$, 'QG004', NULL,
	'catalog: a lower-case currency is QG004');
SELECT throws_ok($$SELECT * FROM gifq_catalog(currency => 'US')$$, 'QG004', NULL,
	'catalog: a two-letter currency is QG004');

------------------------------------------------------------------------
-- gifq_feature_brand
------------------------------------------------------------------------

SELECT lives_ok($$SELECT gifq_feature_brand('target-us', 1, true)$$, 'feature: target-us at rank 1, sponsored');
SELECT lives_ok($$SELECT gifq_feature_brand('walmart-us', 2)$$, 'feature: walmart-us at rank 2');
SELECT lives_ok($$SELECT gifq_feature_brand('gone-us', 3, NULL)$$, 'feature: gone-us at rank 3, sponsored NULL');
SELECT results_eq(
	$$SELECT id, featured_rank, sponsored FROM gifq.brands WHERE featured_rank IS NOT NULL ORDER BY id$$,
	$$VALUES ('gone-us', 3, false), ('target-us', 1, true), ('walmart-us', 2, false)$$,
	'feature: ranks and sponsorship stored; sponsored NULL is false');
SELECT is(pg_temp.ids('US'),
	'{target-us,walmart-us,gone-us,amazon-us,bestbuy-us,gap-us,cadretail-us,oos-us}'::text[],
	'catalog: featured brands first by rank, then the rest by name');
SELECT results_eq(
	$$SELECT brand_id, featured_rank, sponsored FROM gifq_catalog('US') LIMIT 3$$,
	$$VALUES ('target-us', 1, true), ('walmart-us', 2, false), ('gone-us', 3, false)$$,
	'catalog: featured_rank and sponsored are returned');
SELECT throws_ok($$SELECT gifq_feature_brand('nope', 1)$$, 'QG201', 'unknown brand "nope"',
	'feature: an unknown brand is QG201');
SELECT throws_ok($$SELECT gifq_feature_brand('walmart-us', NULL, true)$$, 'QG115',
	'sponsored placement of brand "walmart-us" needs a rank', 'feature: sponsored without a rank is QG115');
SELECT results_eq($$SELECT featured_rank, sponsored FROM gifq.brands WHERE id = 'walmart-us'$$,
	$$VALUES (2, false)$$, 'feature: the refused call left the placement as it was');
SELECT lives_ok($$SELECT gifq_feature_brand('walmart-us', NULL)$$, 'feature: a NULL rank removes the placement');
SELECT results_eq($$SELECT featured_rank, sponsored FROM gifq.brands WHERE id = 'walmart-us'$$,
	$$VALUES (NULL::integer, false)$$, 'feature: walmart-us is no longer placed');
SELECT lives_ok($$SELECT gifq_feature_brand('oos-us', 9, true)$$, 'feature: oos-us at rank 9, sponsored');
SELECT lives_ok($$SELECT gifq_feature_brand('oos-us', NULL, false)$$, 'feature: and removed again');
SELECT results_eq($$SELECT featured_rank, sponsored FROM gifq.brands WHERE id = 'oos-us'$$,
	$$VALUES (NULL::integer, false)$$, 'feature: removing a sponsored placement clears sponsored');

------------------------------------------------------------------------
-- popularity: orders of the last 30 days, canceled ones left out
------------------------------------------------------------------------

SELECT pg_temp.keep('p', gifq_create_program('p', 'USD'));
SELECT pg_temp.keep('m1', gifq_upsert_member('p', 'm1', 'm1@example.com', 'US'));
SELECT gifq_transfer(gifq_account('p', NULL, 'issuance'), gifq_account('p', 'm1'), '100000 PTS');
SELECT gifq_fund('p', '10000.00 USD', 'f1');

SELECT pg_temp.keep('o-amazon', order_id) FROM gifq_redeem('p', 'm1', 'amazon-us', '25.00 USD', 'key-1');
SELECT pg_temp.keep('o-bestbuy-1', order_id) FROM gifq_redeem('p', 'm1', 'bestbuy-us', '15.00 USD', 'key-2');
SELECT pg_temp.keep('o-bestbuy-2', order_id) FROM gifq_redeem('p', 'm1', 'bestbuy-us', '40.00 USD', 'key-3');
SELECT pg_temp.keep('o-gap', order_id) FROM gifq_redeem('p', 'm1', 'gap-us', '30.00 USD', 'key-4');
-- orders of the past: made through the API, then backdated (created_at
-- never changes through the order trigger, so it is skipped for this one
-- update with session_replication_role)
SELECT pg_temp.keep('o-gap-29', order_id) FROM gifq_redeem('p', 'm1', 'gap-us', '30.00 USD', 'key-5');
SELECT pg_temp.keep('o-gap-31', order_id) FROM gifq_redeem('p', 'm1', 'gap-us', '30.00 USD', 'key-6');
SELECT pg_temp.keep('o-walmart-40', order_id) FROM gifq_redeem('p', 'm1', 'walmart-us', '30.00 USD', 'key-7');
SET LOCAL session_replication_role = replica;
UPDATE gifq.orders o SET created_at = now() - d.age
FROM (VALUES (pg_temp.id('o-gap-29'), interval '29 days'), (pg_temp.id('o-gap-31'), interval '31 days'),
	(pg_temp.id('o-walmart-40'), interval '40 days')) d (id, age)
WHERE o.id = d.id;
SET LOCAL session_replication_role = origin;

SELECT results_eq(
	$$SELECT b, gifq.popularity(b) FROM unnest('{amazon-us,bestbuy-us,gap-us,walmart-us,target-us}'::text[]) b$$,
	$$VALUES ('amazon-us', 1::bigint), ('bestbuy-us', 2::bigint), ('gap-us', 2::bigint),
		('walmart-us', 0::bigint), ('target-us', 0::bigint)$$,
	'popularity: orders of the last 30 days per brand (gap-us: today and 29 days ago, not 31)');
SELECT is(pg_temp.ids('US'),
	'{target-us,gone-us,bestbuy-us,gap-us,amazon-us,cadretail-us,oos-us,walmart-us}'::text[],
	'catalog: after the placed brands, the most ordered first, ties by name');
SELECT lives_ok(format('SELECT gifq_cancel_order(%s)', pg_temp.id('o-gap')), 'popularity: cancel the gap-us order');
SELECT is(gifq.popularity('gap-us'), 1::bigint, 'popularity: a canceled order does not count');
SELECT results_eq(
	$$SELECT brand_id, popularity FROM gifq_catalog('US')$$,
	$$VALUES ('target-us', 0::bigint), ('gone-us', 0::bigint), ('bestbuy-us', 2::bigint),
		('amazon-us', 1::bigint), ('gap-us', 1::bigint), ('cadretail-us', 0::bigint),
		('oos-us', 0::bigint), ('walmart-us', 0::bigint)$$,
	'catalog: popularity column and order after the cancel (amazon-us and gap-us tie, by name)');
SELECT is(pg_temp.ids(search => 'o'),
	'{gone-us,amazon-us,kaufhaus-de,cadretail-us,oos-us,tesco-gb}'::text[],
	'catalog: search results keep the same order (rank, popularity, name)');

------------------------------------------------------------------------
-- a later load: changes, discontinuations, unchanged brands
------------------------------------------------------------------------

UPDATE br SET doc = doc || '{"denominations": [25, 50, 100, 200]}' WHERE id = 'target-us';
-- not changes: spaces around the name, another order or case of categories,
-- unsorted or repeated denominations, 3 for 3.0
UPDATE br SET doc = doc || '{"name": " Best Buy ", "categories": ["electronics", "RETAIL"], "denominations": [40, 15, 40]}'
	WHERE id = 'bestbuy-us';
UPDATE br SET doc = doc || '{"denominations": [10, 20, 50]}' WHERE id = 'tesco-gb';
UPDATE br SET doc = doc || '{"discount_pct": 3}' WHERE id = 'amazon-us';
-- changes
UPDATE br SET doc = doc || '{"updated_at": "2026-02-01T00:00:00Z"}' WHERE id = 'gap-us';
UPDATE br SET doc = doc || '{"discount_pct": 5}' WHERE id = 'cafe-fr';
INSERT INTO br VALUES ('newco-us', pg_temp.b('newco-us', 'Newco'));

CREATE TEMP TABLE v3 (ids text[]);
INSERT INTO v3 VALUES ('{newco-us,sushi-jp,cafe-fr,tesco-gb,dutyfree-ca,cadretail-us,gap-us,oos-us,bestbuy-us,walmart-us,target-us,amazon-us}');

SELECT is(gifq_catalog_load(pg_temp.cat((SELECT ids FROM v3), 'v3')), 6,
	'load v3: 1 added + 3 changed + 2 discontinued');
SELECT is((SELECT payload FROM gifq.outbox WHERE event_type = 'catalog.changed' ORDER BY id DESC LIMIT 1),
	'{"added": ["newco-us"], "changed": ["cafe-fr", "gap-us", "target-us"],
		"discontinued": ["gone-us", "kaufhaus-de"], "etag": "v3"}'::jsonb,
	'load v3: the event lists added, changed and discontinued brands, sorted, and the etag');
SELECT results_eq(
	$$SELECT id, discontinued_at FROM gifq.brands WHERE discontinued_at IS NOT NULL ORDER BY id$$,
	$$VALUES ('gone-us', now()), ('kaufhaus-de', now())$$,
	'load v3: the missing brands are discontinued now, not deleted');
SELECT is((SELECT count(*) FROM gifq.brands), 14::bigint, 'load v3: 14 brands kept, 12 active');
SELECT results_eq($$SELECT etag, brands FROM gifq.catalog_state$$, $$VALUES ('v3', 12)$$,
	'load v3: the state has etag v3 and 12 brands');
SELECT results_eq(
	$$SELECT id, featured_rank, sponsored, denominations FROM gifq.brands
	WHERE id IN ('target-us', 'gone-us') ORDER BY id$$,
	$$VALUES ('gone-us', 3, false, '{3000,6000}'::bigint[]),
		('target-us', 1, true, '{2500,5000,10000,20000}'::bigint[])$$,
	'load v3: a changed brand keeps its placement; a discontinued one keeps its row');
SELECT results_eq(
	$$SELECT name, categories, denominations FROM gifq.brands WHERE id = 'bestbuy-us'$$,
	$$VALUES ('Best Buy', '{electronics,retail}'::text[], '{1500,4000}'::bigint[])$$,
	'load v3: bestbuy-us normalises to what it was');
SELECT is(pg_temp.ids('US'),
	'{target-us,bestbuy-us,amazon-us,gap-us,cadretail-us,newco-us,oos-us,walmart-us}'::text[],
	'catalog: the discontinued gone-us is gone, newco-us is in');
SELECT is(pg_temp.ids(search => 'strasse'), '{}'::text[], 'catalog: the discontinued kaufhaus-de is not found');
SELECT is(pg_temp.ids(currency => 'EUR'), '{cafe-fr}'::text[], 'catalog: only cafe-fr is left in EUR');
SELECT is((SELECT discount_pct FROM gifq_catalog(country => 'FR')), 5::numeric,
	'catalog: the changed discount_pct is returned');
SELECT is(gifq.popularity('gone-us'), 0::bigint, 'popularity: of a discontinued brand, still computed');

-- the same catalog again, with another etag and then none
SELECT is(gifq_catalog_load(pg_temp.cat((SELECT ids FROM v3), 'v3b')), 0,
	'load v3 again: nothing changed, the already discontinued brands not counted again');
SELECT results_eq($$SELECT etag, loaded_at, brands FROM gifq.catalog_state$$, $$VALUES ('v3b', now(), 12)$$,
	'load v3 again: the new etag is kept even though nothing changed');
SELECT is(gifq_catalog_load(pg_temp.cat((SELECT ids FROM v3))), 0, 'load v3 without an etag: nothing changed');
SELECT is((SELECT etag FROM gifq.catalog_state), NULL, 'load v3 without an etag: the etag is NULL');
SELECT is((SELECT count(*) FROM pg_temp.events()), 3::bigint, 'load v3 again: no event for a load without changes');
SELECT is((SELECT count(*) FROM gifq.catalog_state), 1::bigint, 'catalog_state: one row');

------------------------------------------------------------------------
-- gifq_alternatives while gone-us is discontinued
------------------------------------------------------------------------

SELECT results_eq($$SELECT * FROM pg_temp.alt('amazon-us', '30.00 USD')$$,
	$$VALUES ('amazon-us 25.00 USD nearest denomination'), ('amazon-us 10.00 USD nearest denomination'),
		('amazon-us 50.00 USD nearest denomination'),
		('newco-us 30.00 USD same category and country'), ('walmart-us 30.00 USD same category and country'),
		('target-us 25.00 USD same category and country, nearest denomination'),
		('bestbuy-us 40.00 USD same category and country, nearest denomination')$$,
	'alternatives: 3 nearest other denominations (ties: the lower first), then same category, country and currency by distance; no discontinued, out-of-stock, other-category, other-country or other-currency brand');
SELECT results_eq($$SELECT * FROM pg_temp.alt('gone-us', '30.00 USD')$$,
	$$VALUES ('newco-us 30.00 USD same category and country'), ('walmart-us 30.00 USD same category and country'),
		('target-us 25.00 USD same category and country, nearest denomination'),
		('amazon-us 25.00 USD same category and country, nearest denomination'),
		('bestbuy-us 40.00 USD same category and country, nearest denomination')$$,
	'alternatives: a discontinued brand offers none of its own denominations; ties in distance go to the featured brand');

------------------------------------------------------------------------
-- a brand coming back is reactivated
------------------------------------------------------------------------

SELECT is(gifq_catalog_load(pg_temp.cat((SELECT ids FROM v3) || '{gone-us}'::text[], 'v4')), 1,
	'load v4: gone-us is back, counted as changed');
SELECT is((SELECT payload FROM gifq.outbox WHERE event_type = 'catalog.changed' ORDER BY id DESC LIMIT 1),
	'{"added": [], "changed": ["gone-us"], "discontinued": [], "etag": "v4"}'::jsonb,
	'load v4: the event lists the reactivated brand as changed');
SELECT results_eq(
	$$SELECT id, discontinued_at, featured_rank FROM gifq.brands WHERE id IN ('gone-us', 'kaufhaus-de') ORDER BY id$$,
	$$VALUES ('gone-us', NULL::timestamptz, 3), ('kaufhaus-de', now(), NULL::integer)$$,
	'load v4: gone-us is active again with its placement; kaufhaus-de stays discontinued');
SELECT is(pg_temp.ids('US'),
	'{target-us,gone-us,bestbuy-us,amazon-us,gap-us,cadretail-us,newco-us,oos-us,walmart-us}'::text[],
	'catalog: gone-us is listed again at its rank');
SELECT is((SELECT count(*) FROM pg_temp.events()), 4::bigint, 'events: four catalog.changed events in all');
SELECT is((SELECT count(*) FROM gifq.outbox WHERE event_type = 'catalog.changed' AND program_id IS NOT NULL),
	0::bigint, 'events: catalog events belong to no program');

------------------------------------------------------------------------
-- gifq_alternatives
------------------------------------------------------------------------

SELECT results_eq($$SELECT * FROM pg_temp.alt('amazon-us', '30.00 USD')$$,
	$$VALUES ('amazon-us 25.00 USD nearest denomination'), ('amazon-us 10.00 USD nearest denomination'),
		('amazon-us 50.00 USD nearest denomination'),
		('gone-us 30.00 USD same category and country'), ('newco-us 30.00 USD same category and country'),
		('walmart-us 30.00 USD same category and country'),
		('target-us 25.00 USD same category and country, nearest denomination'),
		('bestbuy-us 40.00 USD same category and country, nearest denomination')$$,
	'alternatives: the same distance goes to the featured brand first, then by name');
SELECT results_eq($$SELECT * FROM pg_temp.alt('target-us', '15.00 USD')$$,
	$$VALUES ('target-us 25.00 USD nearest denomination'), ('target-us 50.00 USD nearest denomination'),
		('target-us 100.00 USD nearest denomination'),
		('bestbuy-us 15.00 USD same category and country'),
		('amazon-us 10.00 USD same category and country, nearest denomination'),
		('walmart-us 20.00 USD same category and country, nearest denomination'),
		('gone-us 30.00 USD same category and country, nearest denomination'),
		('newco-us 30.00 USD same category and country, nearest denomination')$$,
	'alternatives: the same distance and no rank goes to the more popular brand; a range brand offers its clamped amount');
SELECT results_eq($$SELECT * FROM pg_temp.alt('walmart-us', '10.00 USD')$$,
	$$VALUES ('walmart-us 20.00 USD nearest denomination'),
		('amazon-us 10.00 USD same category and country'),
		('bestbuy-us 15.00 USD same category and country, nearest denomination'),
		('target-us 25.00 USD same category and country, nearest denomination'),
		('gone-us 30.00 USD same category and country, nearest denomination'),
		('newco-us 30.00 USD same category and country, nearest denomination')$$,
	'alternatives: below a range brand''s minimum, its minimum');
SELECT results_eq($$SELECT * FROM pg_temp.alt('walmart-us', '500.00 USD')$$,
	$$VALUES ('walmart-us 200.00 USD nearest denomination'),
		('amazon-us 500.00 USD same category and country'),
		('target-us 200.00 USD same category and country, nearest denomination'),
		('gone-us 60.00 USD same category and country, nearest denomination'),
		('bestbuy-us 40.00 USD same category and country, nearest denomination'),
		('newco-us 30.00 USD same category and country, nearest denomination')$$,
	'alternatives: above a range brand''s maximum, its maximum');
SELECT results_eq($$SELECT * FROM pg_temp.alt('walmart-us', '50.00 USD')$$,
	$$VALUES ('target-us 50.00 USD same category and country'),
		('amazon-us 50.00 USD same category and country'),
		('gone-us 60.00 USD same category and country, nearest denomination'),
		('bestbuy-us 40.00 USD same category and country, nearest denomination'),
		('newco-us 30.00 USD same category and country, nearest denomination')$$,
	'alternatives: inside a range brand''s range nothing of its own; rank comes before popularity');
SELECT results_eq($$SELECT * FROM pg_temp.alt('oos-us', '30.00 USD')$$,
	$$VALUES ('gone-us 30.00 USD same category and country'), ('newco-us 30.00 USD same category and country'),
		('walmart-us 30.00 USD same category and country'),
		('target-us 25.00 USD same category and country, nearest denomination'),
		('amazon-us 25.00 USD same category and country, nearest denomination'),
		('bestbuy-us 40.00 USD same category and country, nearest denomination')$$,
	'alternatives: an out-of-stock brand offers none of its own denominations');
SELECT results_eq($$SELECT * FROM pg_temp.alt('bestbuy-us', '27.50 USD') WHERE left(alt, 10) = 'bestbuy-us'$$,
	$$VALUES ('bestbuy-us 15.00 USD nearest denomination'), ('bestbuy-us 40.00 USD nearest denomination')$$,
	'alternatives: equally near denominations, the lower first');
SELECT results_eq($$SELECT * FROM pg_temp.alt('sushi-jp', '1000 JPY')$$,
	$$VALUES ('sushi-jp 5000 JPY nearest denomination')$$,
	'alternatives: no other brand in JP and JPY, only the brand''s other denomination');
SELECT is_empty($$SELECT * FROM gifq_alternatives('gap-us', '30.00 USD')$$,
	'alternatives: a brand with no other denomination and no brand sharing its category has none');
SELECT throws_ok($$SELECT * FROM gifq_alternatives('nope', '30.00 USD')$$, 'QG201', 'unknown brand "nope"',
	'alternatives: an unknown brand is QG201');
SELECT throws_ok($$SELECT * FROM gifq_alternatives('amazon-us', '30.00 EUR')$$, 'QG204',
	'brand "amazon-us" sells cards in USD, not EUR', 'alternatives: an amount in another currency is QG204');
SELECT throws_ok($$SELECT * FROM gifq_alternatives('amazon-us', '3000 PTS')$$, 'QG204',
	'brand "amazon-us" sells cards in USD, not PTS', 'alternatives: an amount in points is QG204');

-- at most 10 other brands: ten more at 30.00 USD
INSERT INTO br SELECT 'filler-' || lpad(i::text, 2, '0'), pg_temp.b('filler-' || lpad(i::text, 2, '0'),
	'Filler ' || lpad(i::text, 2, '0')) FROM generate_series(1, 10) i;
SELECT is(gifq_catalog_load(pg_temp.cat((SELECT ids FROM v3) || '{gone-us}'::text[]
	|| ARRAY(SELECT id FROM br WHERE id LIKE 'filler-%' ORDER BY id), 'v5')), 10,
	'load v5: ten brands added');
SELECT results_eq($$SELECT * FROM pg_temp.alt('amazon-us', '30.00 USD')$$,
	$$VALUES ('amazon-us 25.00 USD nearest denomination'), ('amazon-us 10.00 USD nearest denomination'),
		('amazon-us 50.00 USD nearest denomination'),
		('gone-us 30.00 USD same category and country'),
		('filler-01 30.00 USD same category and country'), ('filler-02 30.00 USD same category and country'),
		('filler-03 30.00 USD same category and country'), ('filler-04 30.00 USD same category and country'),
		('filler-05 30.00 USD same category and country'), ('filler-06 30.00 USD same category and country'),
		('filler-07 30.00 USD same category and country'), ('filler-08 30.00 USD same category and country'),
		('filler-09 30.00 USD same category and country')$$,
	'alternatives: at most 3 of the brand''s own and 10 other brands');

------------------------------------------------------------------------
-- gifq.offers and gifq.nearest
------------------------------------------------------------------------

SELECT results_eq(
	$$SELECT gifq.offers(gifq.brand('amazon-us'), 2500), gifq.offers(gifq.brand('amazon-us'), 3000),
		gifq.offers(gifq.brand('walmart-us'), 2000), gifq.offers(gifq.brand('walmart-us'), 20000),
		gifq.offers(gifq.brand('walmart-us'), 1999), gifq.offers(gifq.brand('walmart-us'), 20001)$$,
	$$VALUES (true, false, true, true, false, false)$$,
	'offers: a listed denomination, or an amount within the range, bounds included');
SELECT results_eq(
	$$SELECT gifq.nearest(gifq.brand('amazon-us'), 2500), gifq.nearest(gifq.brand('amazon-us'), 7000),
		gifq.nearest(gifq.brand('bestbuy-us'), 2750), gifq.nearest(gifq.brand('amazon-us'), 1),
		gifq.nearest(gifq.brand('walmart-us'), 3333), gifq.nearest(gifq.brand('walmart-us'), 1),
		gifq.nearest(gifq.brand('walmart-us'), 99999)$$,
	$$VALUES (2500::bigint, 5000::bigint, 1500::bigint, 1000::bigint, 3333::bigint, 2000::bigint, 20000::bigint)$$,
	'nearest: the denomination itself, the nearest, the lower one on a tie; a range clamps');
SELECT throws_ok($$SELECT gifq.brand('nope')$$, 'QG201', 'unknown brand "nope"', 'brand: an unknown brand is QG201');

------------------------------------------------------------------------
-- a catalog of a real provider's size
------------------------------------------------------------------------

-- 600 brands: the catalog.changed event lists them all (about 12 kB)
CREATE TEMP TABLE big AS SELECT jsonb_build_object('brands', jsonb_agg(
	pg_temp.b('brand-' || lpad(i::text, 6, '0') || '-us', 'Brand ' || i) ORDER BY i), 'etag', 'big') AS doc
	FROM generate_series(1, 600) i;
SELECT lives_ok('SELECT gifq_catalog_load((SELECT doc FROM big))', 'load: a catalog of 600 brands loads');
SELECT results_eq(
	$$SELECT jsonb_array_length(payload->'added'), jsonb_array_length(payload->'changed'),
		jsonb_array_length(payload->'discontinued'), payload->>'etag'
	FROM gifq.outbox WHERE event_type = 'catalog.changed' ORDER BY id DESC LIMIT 1$$,
	$$VALUES (600, 0, 23, 'big')$$,
	'load: its event lists the 600 added brands and the 23 it discontinued');
SELECT is((SELECT count(*) FROM gifq_catalog()), 600::bigint, 'load: 600 active brands');

------------------------------------------------------------------------
-- the ledger is untouched by all of it
------------------------------------------------------------------------

SELECT is_empty($$SELECT * FROM gifq_ledger_verify()$$, 'verify: the ledger is consistent at the end');

-- arguments the suggestion and placement functions refuse
SELECT throws_ok($$SELECT * FROM gifq_alternatives('amazon-us', NULL)$$, 'QG115',
	'amount must not be NULL', 'gifq_alternatives: a NULL amount is QG115');
SELECT throws_ok($$SELECT * FROM gifq_alternatives(NULL, '10.00 USD')$$, 'QG115',
	'brand_id must not be NULL', 'gifq_alternatives: a NULL brand is QG115');
SELECT throws_ok($$SELECT gifq_feature_brand(NULL, 1)$$, 'QG115',
	'brand_id must not be NULL', 'gifq_feature_brand: a NULL brand is QG115');
SELECT throws_ok($$SELECT gifq_feature_brand('amazon-us', 0)$$, 'QG115',
	'invalid rank 0 for brand "amazon-us"', 'gifq_feature_brand: rank 0 is QG115');
SELECT throws_ok($$SELECT gifq_feature_brand('amazon-us', -3, true)$$, 'QG115',
	'invalid rank -3 for brand "amazon-us"', 'gifq_feature_brand: a negative rank is QG115');

SELECT * FROM finish();
ROLLBACK;
