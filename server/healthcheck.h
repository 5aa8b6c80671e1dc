/* healthcheck.h - `shufflenet-server --healthcheck [URL]`, a probe for container
 * HEALTHCHECKs in images that have no curl. */
#ifndef SN_HEALTHCHECK_H
#define SN_HEALTHCHECK_H

/* argv[0] is "--healthcheck", argv[1] an optional URL (http://HOST:PORT/PATH; default
 * http://127.0.0.1:PORT/readyz with PORT from $SHUFFLENET_LISTEN, else 8080). One GET with a
 * 3 s budget; prints the status line. Returns the exit code: 0 on 200, 1 otherwise. */
int sn_healthcheck(int argc, char **argv);

#endif
