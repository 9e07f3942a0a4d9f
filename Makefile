# gifq: PGXS build.  `make test` and `make demo` need no running server:
# they set one up (scripts/), as root, on a fresh Debian 12 machine.
EXTENSION = gifq
MODULE_big = gifq
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))
DATA = $(wildcard sql/gifq--*.sql)
REGRESS = $(sort $(filter-out gifq--%,$(basename $(notdir $(wildcard sql/*.sql)))))
REGRESS_OPTS = --load-extension=gifq
ISOLATION = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test --load-extension=gifq
TAP_TESTS = 1
PROVE_TESTS = $(wildcard test/t/*.pl)
SHLIB_LINK = -lcurl -lcrypto
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter $(if $(CI),-Werror)
EXTRA_CLEAN = results regression.diffs regression.out tmp_check output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild every object when a shared
# header changes (a struct's layout must agree across files).
$(OBJS): $(wildcard src/*.h)

.PHONY: test demo bench deps sandbox
deps:
	scripts/setup.sh
test:
	REGRESS="$(REGRESS)" ISOLATION="$(ISOLATION)" scripts/test.sh
demo:
	scripts/demo.sh
bench:
	bench/run
# the sandbox provider on 127.0.0.1 (SANDBOX_PORT, default 8089) until ^C
sandbox:
	python3 test/sandbox/sandbox.py --port $${SANDBOX_PORT:-8089}
