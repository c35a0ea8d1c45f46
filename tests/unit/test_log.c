/* test_log.c — event lines: a loop thread's lines reach stderr through the writer thread, in
 * order; with stderr stuck (a pipe nobody reads) a loop thread's log_event still returns at
 * once, the lines past the queue's bound are dropped and the next line written counts them;
 * other threads, and every thread when no writer runs, write their own lines. */
#include "../../src/util/log.c" /* first: cmocka defines a fail() macro */

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

static int saved_stderr = -1;

/* stderr becomes the write end of a pipe; its read end is returned */
static int capture_stderr(void)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    return fds[0];
}

static void restore_stderr(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
}

/* everything in the pipe until it is closed at the write end (stderr restored first) */
static size_t read_all(int fd, char *out, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    return n;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *loop_thread_logs(void *arg)
{
    int n = *(int *)arg;
    log_thread_is_loop();
    for (int i = 0; i < n; i++)
        log_event(LOG_WARN, "test", "line %d", i);
    return NULL;
}

static atomic_bool flood_done;

/* n short lines, then n of about 4 KiB, as a loop thread */
static void *loop_thread_floods(void *arg)
{
    int n = *(int *)arg;
    static char big[4000];
    memset(big, 'x', sizeof big - 1);
    loop_thread_logs(arg);
    for (int i = 0; i < n; i++)
        log_event(LOG_WARN, "test", "%s", big);
    atomic_store(&flood_done, true);
    return NULL;
}

static void test_loop_lines_go_through_the_writer_in_order(void **state)
{
    (void)state;
    int fd = capture_stderr();
    log_writer_start();
    int n = 50;
    pthread_t t;
    pthread_create(&t, NULL, loop_thread_logs, &n);
    pthread_join(t, NULL);
    log_writer_stop(); /* writes what is queued */
    restore_stderr();
    static char out[65536];
    read_all(fd, out, sizeof out);
    close(fd);
    const char *p = out;
    for (int i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "aigw: line %d\n", i);
        const char *at = strstr(p, want);
        assert_non_null(at);
        p = at + strlen(want);
    }
    assert_null(strstr(out, "dropped"));
}

static void test_a_stuck_stderr_never_blocks_a_loop_thread(void **state)
{
    (void)state;
    int fd = capture_stderr();
    /* nobody reads the pipe yet: the writer blocks once about 64 KiB are in it, and the
     * queue's 256 lines fill behind it */
    log_writer_start();
    int n = 1000;
    pthread_t t;
    pthread_create(&t, NULL, loop_thread_floods, &n);
    bool finished = false;
    for (int waited = 0; waited < 500 && !finished; waited++) { /* up to 5 s */
        finished = atomic_load(&flood_done);
        if (!finished) usleep(10000);
    }
    /* the loop thread got through its 2,000 lines (4 MB) with nobody reading: a blocked write
     * would still be waiting (the reads below free it, so the test ends either way) */
    /* now read: the writer finishes, and every line is either written or counted as dropped */
    static char out[8 << 20];
    size_t got = 0;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (int spins = 0; spins < 2000; spins++) {
        ssize_t r = read(fd, out + got, sizeof out - 1 - got);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        pthread_mutex_lock(&queue.lock);
        bool empty = queue.count == 0;
        pthread_mutex_unlock(&queue.lock);
        if (empty && atomic_load(&flood_done)) break;
        usleep(5000);
    }
    pthread_join(t, NULL);
    log_writer_stop();
    restore_stderr();
    fcntl(fd, F_SETFL, 0);
    got += read_all(fd, out + got, sizeof out - got);
    close(fd);
    unsigned long short_lines = 0, big_lines = 0, dropped = 0, notes = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "aigw: line ", 11)) {
            short_lines++;
        } else if (!strncmp(line, "aigw: xxx", 9)) {
            assert_int_equal(strlen(line), 6 + 3999); /* never cut or interleaved */
            big_lines++;
        } else {
            char *end;
            unsigned long k = strtoul(line + 6, &end, 10);
            assert_string_equal(end, k == 1 ? " event line dropped: stderr was not keeping up"
                                            : " event lines dropped: stderr was not keeping up");
            dropped += k;
            notes++;
        }
    }
    assert_true(finished);
    assert_true(notes > 0);
    assert_true(dropped > 0);
    assert_int_equal(short_lines + big_lines + dropped, 2 * (unsigned long)n);
}

static void test_without_a_writer_lines_are_written_by_their_caller(void **state)
{
    (void)state;
    int fd = capture_stderr();
    log_thread_is_loop(); /* a loop thread, but no writer runs */
    log_event(LOG_INFO, "test", "direct %d", 7);
    on_loop_thread = false;
    log_set_json(true);
    log_event(LOG_ERROR, "boom", "quote \" and newline\n");
    log_set_json(false);
    restore_stderr();
    char out[1024];
    read_all(fd, out, sizeof out);
    close(fd);
    assert_non_null(strstr(out, "aigw: direct 7\n"));
    assert_non_null(
        strstr(out, "\"level\":\"error\",\"event\":\"boom\",\"msg\":\"quote \\\" and newline\\n\"}\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_lines_go_through_the_writer_in_order),
        cmocka_unit_test(test_a_stuck_stderr_never_blocks_a_loop_thread),
        cmocka_unit_test(test_without_a_writer_lines_are_written_by_their_caller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
