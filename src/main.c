/*
 * main.c - the allowd server: read options, open the store, create the
 * first credentials on an empty data directory, serve HTTP until SIGTERM or
 * SIGINT, then finish requests in flight and close the store cleanly.
 */
#include "allowd/auth.h"
#include "allowd/clock.h"
#include "allowd/config.h"
#include "allowd/engine.h"
#include "allowd/error.h"
#include "allowd/log.h"
#include "allowd/ratelimit.h"
#include "allowd/server.h"
#include "allowd/store.h"
#include "api/api.h"

#include <errno.h>
#include <sodium.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHUTDOWN_GRACE_MS 10000

static void notify_port(int fd, int port)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d\n", port);
	if (write(fd, buf, (size_t)n) != n)
		log_warn("could not write the port to --notify-fd %d: %s", fd, strerror(errno));
	close(fd);
}

/*
 * Prints the credentials created on first start to stdout -- once, for the
 * person who started the server.  They never go to the log (stderr).
 */
static void show_credentials(const char *data_dir)
{
	char path[4096], buf[1024];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/credentials.json", data_dir);
	if (!(f = fopen(path, "r")))
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	printf("allowd: first start: created an account and credentials; they are also in %s\n%s\n",
	       path, buf);
	fflush(stdout);
	sodium_memzero(buf, sizeof(buf));
}

int main(int argc, char **argv)
{
	allowd_config cfg;
	allowd_store_options so = {0};
	allowd_store *store = NULL;
	allowd_auth *auth = NULL;
	allowd_server *server = NULL;
	allowd_ratelimit *requests = NULL, *auth_failures = NULL;
	allowd_engine *engine = NULL;
	allowd_engine_options eo;
	allowd_api api;
	char db_path[4096];
	sigset_t sigs;
	int rc, port = 0, created = 0, sig = 0, status = 1, level;

	allowd_config_defaults(&cfg);
	rc = allowd_config_load(&cfg, argc, argv);
	if (rc == 1) {
		allowd_config_clear(&cfg);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "allowd: %s\n", allowd_error_last()->message);
		allowd_config_clear(&cfg);
		return 2;
	}
	if ((level = allowd_log_level_parse(cfg.log_level)) < 0) {
		fprintf(stderr, "allowd: --log-level must be error, warn, info or debug\n");
		allowd_config_clear(&cfg);
		return 2;
	}
	allowd_log_threshold = (allowd_log_level)level;

	/* every thread started from here on inherits the blocked signals */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a file-size limit: writes fail (503), the server lives */

	if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
		log_error("cannot create data directory %s: %s", cfg.data_dir, strerror(errno));
		goto out;
	}
	if (snprintf(db_path, sizeof(db_path), "%s/allowd.db", cfg.data_dir) >= (int)sizeof(db_path)) {
		log_error("--data-dir is too long");
		goto out;
	}
	so.path = db_path;
	if (allowd_store_open(&store, &so) || allowd_auth_new(&auth, store, cfg.data_dir) ||
	    allowd_auth_bootstrap(auth, cfg.data_dir, &created)) {
		log_error("startup failed: %s", allowd_error_last()->message);
		goto out;
	}
	if (created)
		show_credentials(cfg.data_dir);
	if (allowd_ratelimit_new(&requests, cfg.rate_limit, cfg.rate_limit_window * 1000, 1000000) ||
	    allowd_ratelimit_new(&auth_failures, cfg.auth_failure_limit,
				 cfg.auth_failure_window * 1000, 1000000)) {
		log_error("%s", allowd_error_last()->message);
		goto out;
	}
	if (strlen(cfg.subaddress_delimiter) > 1) {
		log_error("--subaddress-delimiter must be one character or empty");
		goto out;
	}
	allowd_engine_options_init(&eo);
	eo.subaddress_delimiter = cfg.subaddress_delimiter[0];
	eo.regex_match_limit = (uint32_t)cfg.regex_match_limit;
	api.store = store;
	api.auth = auth;
	api.requests = requests;
	api.auth_failures = auth_failures;
	if (allowd_engine_new(&engine, &eo)) {
		log_error("%s", allowd_error_last()->message);
		goto out;
	}
	api.engine = engine;
	api.evaluate_budget_ms = cfg.evaluate_budget;
	{
		int64_t t0 = allowd_monotonic_us();
		if (allowd_api_engine_attach(&api)) {
			log_error("loading policies into the engine: %s", allowd_error_last()->message);
			goto out;
		}
		log_info("engine: policies loaded in %lld ms",
			 (long long)(allowd_monotonic_us() - t0) / 1000);
	}
	if (allowd_server_start(&server, &cfg, &api, &port)) {
		log_error("%s", allowd_error_last()->message);
		goto out;
	}
	log_info("allowd listening on %s (port %d), data in %s", cfg.listen, port, cfg.data_dir);
	if (cfg.notify_fd >= 0)
		notify_port((int)cfg.notify_fd, port);

	while (sigwait(&sigs, &sig) != 0)
		;
	log_info("received %s; finishing requests in flight", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	allowd_server_stop(server, SHUTDOWN_GRACE_MS);
	server = NULL;
	status = 0;
out:
	allowd_server_stop(server, 0);
	allowd_store_free(store); /* first: its writer thread calls into the engine */
	store = NULL;
	allowd_engine_free(engine);
	allowd_ratelimit_free(requests);
	allowd_ratelimit_free(auth_failures);
	allowd_auth_free(auth);
	allowd_store_free(store);
	if (status == 0)
		log_info("allowd stopped cleanly");
	allowd_config_clear(&cfg);
	return status;
}
