/* import_litellm.h — `aigw config import litellm FILE`: a LiteLLM proxy config.yaml written
 * again as aigw's YAML. */
#ifndef AIGW_GATEWAY_IMPORT_LITELLM_H
#define AIGW_GATEWAY_IMPORT_LITELLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Reads the LiteLLM config at path and writes the equivalent aigw config to out: providers
 * (one per distinct type + base URL + key + API version), `models:` (each model_name, in the
 * file's order, several entries of one name becoming one name served by several providers),
 * `os.environ/NAME` written as `${NAME}`, and a comment for every LiteLLM setting left out.
 * Nothing is written unless the whole file maps: on failure returns false with
 * "file:line: message" in err. */
bool import_litellm(const char *path, FILE *out, char *err, size_t errlen);

/* The subcommand: import_litellm to stdout, or the message on stderr. Returns the exit code. */
int import_litellm_command(const char *path);

#endif
