/* probe stands in for a compiler in the sandbox tests: each argument names
   one thing to try, and it prints one line per try with the result, so a
   test sees exactly which layer refused what. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void result(const char *what, const char *arg, int ok) {
	printf("%s %s: %s\n", what, arg, ok ? "ok" : strerror(errno));
}

static void inet(const char *arg, int type) {
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(arg))};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int s = socket(AF_INET, type, 0);
	if (s < 0) {
		result(type == SOCK_STREAM ? "tcp-socket" : "udp-socket", arg, 0);
		return;
	}
	if (type == SOCK_STREAM)
		result("tcp-connect", arg, connect(s, (struct sockaddr *)&a, sizeof a) == 0);
	else
		result("udp-send", arg, sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a) == 1);
	close(s);
}

static void unixsock(const char *arg) {
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strncpy(a.sun_path, arg, sizeof a.sun_path - 1);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0) {
		result("unix-socket", arg, 0);
		return;
	}
	result("unix-connect", arg, connect(s, (struct sockaddr *)&a, sizeof a) == 0);
	close(s);
}

static void limit(const char *name, int res) {
	struct rlimit r;
	getrlimit(res, &r);
	if (r.rlim_cur == RLIM_INFINITY)
		printf("limit %s: unlimited\n", name);
	else
		printf("limit %s: %llu\n", name, (unsigned long long)r.rlim_cur);
}

int main(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		char *arg = strchr(argv[i], '=');
		if (!arg)
			continue;
		*arg++ = 0;
		const char *op = argv[i];
		if (!strcmp(op, "tcp"))
			inet(arg, SOCK_STREAM);
		else if (!strcmp(op, "udp"))
			inet(arg, SOCK_DGRAM);
		else if (!strcmp(op, "unix"))
			unixsock(arg);
		else if (!strcmp(op, "read")) {
			int fd = open(arg, O_RDONLY);
			result("read", arg, fd >= 0);
		} else if (!strcmp(op, "write")) {
			int fd = open(arg, O_WRONLY | O_CREAT, 0600);
			result("write", arg, fd >= 0);
		} else if (!strcmp(op, "kill"))
			result("kill", arg, kill(atoi(arg), 0) == 0);
		else if (!strcmp(op, "info")) {
			errno = 0;
			printf("nice: %d\n", getpriority(PRIO_PROCESS, 0));
			limit("cpu", RLIMIT_CPU);
			limit("as", RLIMIT_AS);
			limit("fsize", RLIMIT_FSIZE);
			limit("nproc", RLIMIT_NPROC);
			limit("core", RLIMIT_CORE);
			char cwd[4096];
			printf("cwd: %s\n", getcwd(cwd, sizeof cwd) ? cwd : strerror(errno));
		}
	}
	return 0;
}
