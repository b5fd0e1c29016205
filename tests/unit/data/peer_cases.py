"""Lines from the public test data of other access-log parsers, with what logpulse must store.

Each case names its source (repository and file). The line is as the peer's test has it; because
logpulse needs a customer and a duration that most peers' formats lack, a case says where they come
from: the customer is the client address (stored as its HMAC under the key `peer`, so that IPv6
addresses are valid ids), and the duration is a number field of the line (nginx
`DURATION_FROM=$body_bytes_sent`) or, for an Apache format with none, ` %D` appended to the format
and ` 1042` to the line (stored as `0.001042`). A fragment or format with no time either (apachelogs'
directive tests, logparser's single variables, nginx-tests' `$uri:$status`) is framed with a time,
a client address and a duration of the case's own, written next to it. The expected values are the
peer's (time in UTC,
status, request path without the query string); `want=None` is a line refused, as the peer refuses
it or as a deliberate refusal, and `REFUSED_AT_START` a format logpulse refuses before reading a line
(see docs/log-formats.md, "Deliberate refusals").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

REFUSED_AT_START = "refused at start"
APPENDED_DURATION = "0.001042"


@dataclass(frozen=True)
class Want:
    time: str  # UTC, to the second: 2021-03-31T12:04:07
    status: str
    path: str
    duration: str
    customer: str  # the raw value, stored as its HMAC


@dataclass(frozen=True)
class Case:
    source: str
    kind: str  # nginx | apache | json
    fmt: str
    line: str
    want: Want | str | None
    opts: dict[str, str] = field(default_factory=dict)


VRL_NGINX = "vectordotdev/vrl src/stdlib/parse_nginx_log.rs"
VRL_APACHE = "vectordotdev/vrl src/stdlib/parse_apache_log.rs"
APACHELOGS = "jwodder/apachelogs test/test_parse.py"
APACHELOGS_VHOST = "jwodder/apachelogs test/data/vhost_combined.log"
LNAV = "tstack/lnav test/logfile_access_log.0"
LNAV_BAD = "tstack/lnav test/logfile_bad_access_log.0"
LNAV_REGEXP = "tstack/lnav test/logfile_regexp_access_log.0"

NGINX_BY_SIZE = {"duration_from": "$body_bytes_sent", "customer_from": "$remote_addr"}
INGRESS = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" '
    '"$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] '
    "$upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id"
)
NGINX_MAIN = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" '
    '"$http_user_agent" "$http_x_forwarded_for"'
)
UA_CHROME = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/111.0.0.0"
ERROR_LINE = (
    '2021/04/01 13:02:31 [error] 31#31: *1 open() "/usr/share/nginx/html/not-found" failed (2: No such file or '
    'directory), client: 172.17.0.1, server: localhost, request: "POST /not-found HTTP/1.1", host: "localhost:8081"'
)


def nginx_size(source: str, fmt: str, line: str, want: Want | None) -> Case:
    return Case(source, "nginx", fmt, line, want, NGINX_BY_SIZE)


def ingress(line: str, want: Want | None) -> Case:
    return Case(
        VRL_NGINX,
        "nginx",
        INGRESS,
        line,
        want,
        {
            "customer_from": "$remote_addr",
            "nginx_custom_variables": "proxy_upstream_name,proxy_alternative_upstream_name,req_id",
        },
    )


def apache_d(source: str, fmt: str, line: str, want: Want | None, customer: str = "%h", **opts: str) -> Case:
    """An Apache case with ` %D` appended to the format and ` 1042` to the line (the peer's has no duration)."""
    return Case(source, "apache", fmt + " %D", line + " 1042", want, {"customer_from": customer, **opts})


NGINX_CASES = [
    nginx_size(
        VRL_NGINX,
        'combined "$gzip_ratio"',
        '172.17.0.1 - - [31/Mar/2021:12:04:07 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/7.75.0" "-"',
        Want("2021-03-31T12:04:07", "200", "/", "612", "172.17.0.1"),
    ),
    nginx_size(
        VRL_NGINX,
        "combined",
        '0.0.0.0 - - [23/Apr/2021:14:59:24 +0000] "GET /my-path/manifest.json HTTP/1.1" 200 504 '
        f'"https://my-url.com/my-path" "{UA_CHROME}"',
        Want("2021-04-23T14:59:24", "200", "/my-path/manifest.json", "504", "0.0.0.0"),
    ),
    nginx_size(
        VRL_NGINX,
        "combined",
        '0.0.0.0 - - [04/Oct/2022:04:34:49 +0000] "" 400 0 "" ""',
        Want("2022-10-04T04:34:49", "400", "-", "0", "0.0.0.0"),
    ),
    nginx_size(
        VRL_NGINX,
        "combined",
        '0.0.0.0 - - [04/Oct/2022:03:07:27 +0000] "]&\\xDF\\xBDV\\xE7\\xBB<\\x10;\\xA2b}\\xDFM\\x1D" 400 150 "-" "-"',
        Want("2022-10-04T03:07:27", "400", "-", "150", "0.0.0.0"),
    ),
    nginx_size(
        VRL_NGINX,
        "combined",
        '0.0.0.0 - - [04/Oct/2022:03:07:27 +0000] "]&\\xDF\\xBDV\\xE7\\xBB<\\x10;\\xA2b}\\xDFM\\x1D" 400 150 "" "-"',
        Want("2022-10-04T03:07:27", "400", "-", "150", "0.0.0.0"),
    ),
    nginx_size(
        VRL_NGINX,
        'combined "$gzip_ratio"',
        '172.17.0.1 - alice [01/Apr/2021:12:02:31 +0000] "POST /not-found HTTP/1.1" 404 153 '
        '"http://localhost/somewhere" "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) '
        'Chrome/72.0.3626.119 Safari/537.36" "2.75"',
        Want("2021-04-01T12:02:31", "404", "/not-found", "153", "172.17.0.1"),
    ),
    ingress(
        '0.0.0.0 - - [18/Mar/2023:15:00:00 +0000] "GET /some/path HTTP/2.0" 200 12312 '
        f'"https://10.0.0.1/some/referer" "{UA_CHROME}" 462 0.050 [some-upstream-service-9000] [] '
        "10.0.50.80:9000 19437 0.049 200 752178adb17130b291aefd8c386279e7",
        Want("2023-03-18T15:00:00", "200", "/some/path", "0.050", "0.0.0.0"),
    ),
    ingress(
        '0.0.0.0 - - [18/Mar/2023:15:00:00 +0000] "GET /some/path HTTP/2.0" 200 12312 '
        f'"https://10.0.0.1/some/referer" "{UA_CHROME}" 462 0.050 [some-upstream-service-9000] [] '
        "- - - - 752178adb17130b291aefd8c386279e7",
        Want("2023-03-18T15:00:00", "200", "/some/path", "0.050", "0.0.0.0"),
    ),
    ingress(
        '0.0.0.0 - - [18/Mar/2023:15:00:00 +0000] "GET /some/path HTTP/2.0" 200 12312 '
        f'"" "{UA_CHROME}" 462 0.050 [some-upstream-service-9000] [] '
        "- - - - 752178adb17130b291aefd8c386279e7",
        Want("2023-03-18T15:00:00", "200", "/some/path", "0.050", "0.0.0.0"),
    ),
    ingress(
        '0.0.0.0 - bob [18/Mar/2023:15:00:00 +0000] "GET /some/path HTTP/2.0" 200 12312 '
        f'"https://10.0.0.1/some/referer" "{UA_CHROME}" 462 0.050 [some-upstream-service-9000] '
        "[some-other-upstream-5000] 10.0.50.80:9000 19437 0.049 200 752178adb17130b291aefd8c386279e7",
        Want("2023-03-18T15:00:00", "200", "/some/path", "0.050", "0.0.0.0"),
    ),
    nginx_size(
        VRL_NGINX,
        NGINX_MAIN,
        '172.24.0.3 - - [31/Dec/2024:17:32:06 +0000] "GET / HTTP/1.1" 200 615 "-" "curl/8.11.1" "-"',
        Want("2024-12-31T17:32:06", "200", "/", "615", "172.24.0.3"),
    ),
    nginx_size(
        VRL_NGINX,
        NGINX_MAIN,
        '172.24.0.3 - - [31/Dec/2024:17:32:06 +0000] "GET / HTTP/1.1" 200 615 "-" "curl/8.11.1" "172.24.0.1"',
        Want("2024-12-31T17:32:06", "200", "/", "615", "172.24.0.3"),
    ),
    nginx_size(
        VRL_NGINX,
        NGINX_MAIN,
        '172.24.0.3 - - [31/Dec/2024:17:32:06 +0000] "GET / HTTP/1.1" 200 615 "-" "curl/8.11.1" "1.2.3.4, 10.10.1.1"',
        Want("2024-12-31T17:32:06", "200", "/", "615", "172.24.0.3"),
    ),
    nginx_size(
        VRL_NGINX,
        NGINX_MAIN,
        '172.24.0.2 - alice [03/Jan/2025:16:42:58 +0000] "GET / HTTP/1.1" 200 615 "http://domain.tld/path" '
        '"curl/8.11.1" "1.2.3.4, 10.10.1.1"',
        Want("2025-01-03T16:42:58", "200", "/", "615", "172.24.0.2"),
    ),
    nginx_size(VRL_NGINX, NGINX_MAIN, ERROR_LINE, None),  # an error-log line is no access line
    nginx_size(VRL_NGINX, "combined", ERROR_LINE, None),
    nginx_size(
        VRL_NGINX,
        "combined",
        '172.17.0.1 - alice [01/Apr/2021:12:02:31 +0000] "POST /not-found HTTP/1.1" 404 153 '
        '"http://localhost/somewhere" "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) '
        'Chrome/72.0.3626.119 Safari/537.36" "2.75"',
        None,  # a compression field the format does not have: the peer's `combined` allows it, nginx's does not
    ),
]

LNAV_IP = "192.168.202.254"
LNAV_LINES = [
    ('192.168.202.254 - - [20/Jul/2009:22:59:26 +0000] "GET /vmw/cgi/tramp HTTP/1.0" 200 134 "-" "gPXE/0.9.7"',
     Want("2009-07-20T22:59:26", "200", "/vmw/cgi/tramp", "134", "192.168.202.254")),
    ('192.168.202.254 - - [20/Jul/2009:22:59:29 +0000] "GET /vmw/vSphere/default/vmkboot.gz HTTP/1.0" 404 46210 "-" '
     '"gPXE/0.9.7"', Want("2009-07-20T22:59:29", "404", "/vmw/vSphere/default/vmkboot.gz", "46210", "192.168.202.254")),
    ('192.168.202.254 - - [20/Jul/2009:22:59:29 +0000] "GET /vmw/vSphere/default/vmkernel.gz HTTP/1.0" 200 78929 "-" '
     '"gPXE/0.9.7"', Want("2009-07-20T22:59:29", "200", "/vmw/vSphere/default/vmkernel.gz", "78929", LNAV_IP)),
]  # fmt: skip
NGINX_CASES += [nginx_size(LNAV, "combined", line, want) for line, want in LNAV_LINES]
NGINX_CASES += [nginx_size(LNAV_BAD, "combined", line, want) for line, want in (LNAV_LINES[0], LNAV_LINES[2])]
NGINX_CASES += [
    nginx_size(
        LNAV_BAD,
        "combined",
        '192.168.202.254 [20/Jul/2009:22:59:29 +0000] "GET /vmw/vSphere/default/vmkboot.gz HTTP/1.0" 404 46210 "-" '
        '"gPXE/0.9.7"',
        None,  # the ident and user fields are missing
    )
]

COMMON = '%h %l %u %t "%r" %>s %b'
COMBINED = COMMON + ' "%{Referer}i" "%{User-agent}i"'
VHOST_COMBINED = '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"'
WSGI = '%{%Y-%m-%d %H:%M:%S %z}t [%{msec_frac}t] %s %a:%{remote}p <-> %A:%p "%m" "%U%q" "%f" %P:%{tid}P "%R"'
WSGI_EPOCH = '%{sec}t [%{msec_frac}t] %s %a:%{remote}p <-> %A:%p "%m" "%U%q" "%f" %P:%{tid}P "%R"'

APACHE_CASES = [
    apache_d(
        VRL_APACHE,
        COMMON,
        '127.0.0.1 bob frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
        Want("2000-10-10T20:55:36", "200", "/apache_pb.gif", APPENDED_DURATION, "127.0.0.1"),
    ),
    apache_d(
        VRL_APACHE,
        COMBINED,
        '224.92.49.50 bob frank [25/Feb/2021:12:44:08 +0000] "PATCH /one-to-one HTTP/1.1" 401 84170 '
        '"http://www.seniorinfomediaries.com/vertical/channels/front-end/bandwidth" '
        '"Mozilla/5.0 (X11; Linux i686; rv:5.0) Gecko/1945-10-12 Firefox/37.0"',
        Want("2021-02-25T12:44:08", "401", "/one-to-one", APPENDED_DURATION, "224.92.49.50"),
    ),
    apache_d(
        VRL_APACHE,
        COMBINED,
        '224.92.49.50 bob frank [25/Feb/2021:12:44:08 +0000] "PATCH /one-to-one HTTP/1.1" 401 84170 - -',
        None,  # httpd always quotes these two fields; unquoted `-` is not a line it writes
    ),
    apache_d(VRL_APACHE, COMMON, "- - - - - - -", None),
    apache_d(VRL_APACHE, COMMON, '- - - [-] "-" - -', None),
    apache_d(VRL_APACHE, COMMON, "not a common log line", None),
    apache_d(VRL_APACHE, COMBINED, "- - - [1234] - - - - - ", None),
    apache_d(
        APACHELOGS,
        COMBINED,
        '209.126.136.4 - - [01/Nov/2017:07:28:29 +0000] "GET / HTTP/1.1" 301 521 "-" "Mozilla/5.0 (Windows NT 10.0; '
        'Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/57.0.2987.133 Safari/537.36"',
        Want("2017-11-01T07:28:29", "301", "/", APPENDED_DURATION, "209.126.136.4"),
    ),
    # the fragments of test_parse.py, framed with a time, a status and a customer where they lack them
    Case(
        APACHELOGS,
        "apache",
        '%t %>s %h "%400r" "%r" %D',
        '[01/Nov/2017:07:28:29 +0000] 200 10.0.0.1 "-" "GET /index.html HTTP/1.1" 1042',
        Want("2017-11-01T07:28:29", "200", "/index.html", APPENDED_DURATION, "10.0.0.1"),
        {"customer_from": "%h"},
    ),
    Case(
        APACHELOGS,
        "apache",
        '%t %>s %h "%!400r" "%r" %D',
        '[01/Nov/2017:07:28:29 +0000] 200 10.0.0.1 "-" "GET /index.xml HTTP/1.1" 1042',
        Want("2017-11-01T07:28:29", "200", "/index.xml", APPENDED_DURATION, "10.0.0.1"),
        {"customer_from": "%h"},
    ),
    Case(
        APACHELOGS,
        "apache",
        "%t %h %<s %s %>s %D",
        "[01/Nov/2017:07:28:29 +0000] 10.0.0.1 201 202 203 1042",
        Want("2017-11-01T07:28:29", "203", "-", APPENDED_DURATION, "10.0.0.1"),  # the final status
        {"customer_from": "%h"},
    ),
    Case(
        APACHELOGS,
        "apache",
        "%t %>s %h %T %{ms}T",
        "[01/Nov/2017:07:28:29 +0000] 200 10.0.0.1 1 1042",
        Want("2017-11-01T07:28:29", "200", "-", "1.042", "10.0.0.1"),
        {"customer_from": "%h"},
    ),
    Case(APACHELOGS, "apache", WSGI, "any", REFUSED_AT_START, {"customer_from": "%a"}),  # strftime %{...}t
    Case(
        APACHELOGS,
        "apache",
        WSGI_EPOCH + " %D",
        '1557089354 [690] 403 172.21.0.1:44782 <-> 172.21.0.2:80 "GET" "/wsgi/test?q=foo" "/usr/local/app/run.wsgi" '
        '16:140168282543872 "wsgi-script" 1042',
        Want("2019-05-05T20:49:14", "403", "/wsgi/test", APPENDED_DURATION, "172.21.0.1"),
        {"customer_from": "%a"},
    ),
    Case(
        APACHELOGS,
        "apache",
        WSGI_EPOCH + " %D",
        '1557089767 [148] 403 172.22.0.1:34488 <-> 172.22.0.2:80 "GET" "/wsgi/t\\xc3\\xa9st" '
        '"/usr/local/app/run.wsgi" 16:140436276180736 "wsgi-script" 1042',
        Want("2019-05-05T20:56:07", "403", "/wsgi/t\u00e9st", APPENDED_DURATION, "172.22.0.1"),
        {"customer_from": "%a"},
    ),
    Case(
        APACHELOGS,
        "apache",
        "%t %>s %h %m %% %U%q %% %H %D",
        "[01/Nov/2017:07:28:29 +0000] 200 10.0.0.1 GET % /index.html?foo % HTTP/1.1 1042",
        Want("2017-11-01T07:28:29", "200", "/index.html", APPENDED_DURATION, "10.0.0.1"),
        {"customer_from": "%h"},
    ),
    Case(
        APACHELOGS,
        "apache",
        "%<t %>s %h %D",
        "[14/Apr/2018:18:39:42 +0000] 200 10.0.0.1 1042",
        REFUSED_AT_START,  # %<t (the time the request was received, as %t) is not read as the time
        {"customer_from": "%h"},
    ),
    apache_d(
        APACHELOGS,
        VHOST_COMBINED,
        r'www.varonathe.org:80 185.234.218.71 - - [14/Apr/2018:18:39:42 +0000] "GET / HTTP/1.1" 301 539 "-" '
        r'"}__test|O:21:\"JDatabaseDriverMysqli\":3:{s:4:\"\\0\\0\\0a\";O:17:\"JSimplepieFactory\":0:{}s:21:'
        r"\"\\0\\0\\0disconnectHandlers\";a:1:{i:0;a:2:{i:0;O:9:\"SimplePie\":5:{s:8:\"sanitize\";O:20:"
        r"\"JDatabaseDriverMysql\":0:{}s:5:\"cache\";b:1;s:19:\"cache_name_function\";s:6:\"assert\";s:10:"
        r"\"javascript\";i:9999;s:8:\"feed_url\";s:54:\"eval(base64_decode($_POST[111]));JFactory::get();exit;\";}"
        r'i:1;s:4:\"init\";}}s:13:\"\\0\\0\\0connection\";i:1;}\xf0\x9d\x8c\x86"',
        Want("2018-04-14T18:39:42", "301", "/", APPENDED_DURATION, "185.234.218.71"),
    ),
]

UA_METASR = (
    "Mozilla/5.0 (Windows NT 5.2) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/58.0.3029.110 Safari/537.36 "
    "SE 2.X MetaSr 1.0"
)
VHOST_LINES = [
    (
        "203.62.1.80",
        "06/May/2019:06:28:20",
        "GET /",
        "577",
        "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:58.0) Gecko/20100101 Firefox/58.0",
    ),
    (
        "203.62.1.80",
        "06/May/2019:06:28:20",
        "GET /robots.txt",
        "596",
        "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:58.0) Gecko/20100101 Firefox/58.0",
    ),
    (
        "203.62.1.80",
        "06/May/2019:06:28:21",
        "POST /App6079ec68.php",
        "606",
        "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:58.0) Gecko/20100101 Firefox/58.0",
    ),
    ("203.62.1.80", "06/May/2019:06:28:21", "GET /webdav/", "554", "Mozilla/5.0"),
    (
        "203.62.1.80",
        "06/May/2019:06:28:21",
        "GET /help.php",
        "592",
        UA_METASR,
    ),
    (
        "203.62.1.80",
        "06/May/2019:06:28:22",
        "GET /java.php",
        "592",
        UA_METASR,
    ),
]
APACHE_CASES += [
    apache_d(
        APACHELOGS_VHOST,
        VHOST_COMBINED,
        f'www.varonathe.org:80 {client} - - [{when} +0000] "{request} HTTP/1.1" 301 {size} "-" "{agent}"',
        Want(f"2019-05-06T{when[12:]}", "301", request.split(" ")[1], APPENDED_DURATION, client),
    )
    for client, when, request, size, agent in VHOST_LINES
]
APACHE_CASES += [apache_d(APACHELOGS_VHOST, VHOST_COMBINED, "Bad line", None)]
APACHE_CASES += [
    Case(
        LNAV_REGEXP,
        "apache",
        '%v %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D',
        line,
        want,
        {"customer_from": "%u"},
    )
    for line, want in (
        (
            'localhost:443 178.20.184.42 1j0vhgd jsmith [26/Jul/2023:00:01:26 -0700] "GET /secure/RapidBoard.jspa?'
            'rapidView=1295&selectedIssue=AA-409111&quickFilter=385508&quickFilter=387097 HTTP/2.0" 200 17163 "-" '
            '"Mozilla/5.0" 116075',
            Want("2023-07-26T07:01:26", "200", "/secure/RapidBoard.jspa", "0.116075", "jsmith"),
        ),
        (
            'localhost:443 154.57.4.229 cger1e khenry [26/Jul/2023:00:02:12 -0700] "GET /secure/RapidBoard.jspa?'
            'rapidView=1839&view=planning.nodetail&issueLimit=100 HTTP/2.0" 200 16517 "https://localhost/secure/'
            'RapidBoard.jspa?rapidView=1843&view=planning.nodetail&issueLimit=100" "Mozilla/5.0" 156302',
            Want("2023-07-26T07:02:12", "200", "/secure/RapidBoard.jspa", "0.156302", "khenry"),
        ),
    )
]

KASSNER_COMBINED = "kassner/log-parser tests/Apache/CombinedTest.php"
KASSNER_IP = "kassner/log-parser tests/Provider/IpAddress.php"
UA_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/29.0.1547.65 "
    "Safari/537.36"
)
KASSNER_FORMAT = '%h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"'
APACHE_CASES += [
    apache_d(KASSNER_COMBINED, KASSNER_FORMAT, line, want)
    for line, want in (
        (
            f'177.3.137.13 - - [11/Sep/2013:22:46:30 +0000] "GET / HTTP/1.1" 200 9726 "-" "{UA_MAC}"',
            Want("2013-09-11T22:46:30", "200", "/", APPENDED_DURATION, "177.3.137.13"),
        ),
        (
            '177.3.137.13 - - [11/Sep/2013:22:46:36 +0000] "GET /media/css/fe0e1ba295680ef4c59ccc987fca2371.css '
            f'HTTP/1.1" 200 36861 "http://ecommerce.dev/" "{UA_MAC}"',
            Want(
                "2013-09-11T22:46:36",
                "200",
                "/media/css/fe0e1ba295680ef4c59ccc987fca2371.css",
                APPENDED_DURATION,
                "177.3.137.13",
            ),
        ),
        (
            '66.249.66.207 - - [11/Sep/2013:22:46:47 +0000] "GET /robots.txt HTTP/1.1" 503 1041 "-" '
            '"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"',
            Want("2013-09-11T22:46:47", "503", "/robots.txt", APPENDED_DURATION, "66.249.66.207"),
        ),
        (
            '177.3.137.13 - - [11/Sep/2013:19:22:43 +0000] "-" 408 0 "-" "-"',
            Want("2013-09-11T19:22:43", "408", "-", APPENDED_DURATION, "177.3.137.13"),
        ),
        (
            '54.232.125.255 - - [07/Oct/2013:04:14:01 +0000] "" 400 0 "-" "-"',
            Want("2013-10-07T04:14:01", "400", "-", APPENDED_DURATION, "54.232.125.255"),
        ),
    )
]
APACHE_CASES += [
    # httpd 2.4 with HTTP/2 wrote no %t in the peer's test: a format without a time is refused
    Case(KASSNER_COMBINED, "apache", '%h %l %u "%r" %>s %O "%{Referer}i" "%{User-Agent}i" %D', "", REFUSED_AT_START)
]
KASSNER_ADDRESSES = [
    "192.168.1.1",
    "192.168.001.01",
    "172.16.0.1",
    "192.168.0.255",
    "8.8.8.8",
    "0.0.0.0",
    "255.255.255.255",
    "1:2:3:4:5:6:7:8",
    "::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7::",
    "1:2:3::6:7:8",
    "fff1:fff2:fff3:fff4:fff5:fff6:fff7:fff8",
    "FFF1:FFF2:FFF3:FFF4:FFF5:FFF6:FFF7:FFF8",
]
# the peer's valid client addresses, each before a port as `%a:%{remote}p` writes it
APACHE_CASES += [
    Case(
        KASSNER_IP,
        "apache",
        '%a:%{remote}p %t "%r" %>s %D',
        f'{address}:44782 [11/Sep/2013:22:46:30 +0000] "GET /x HTTP/1.1" 200 1042',
        Want("2013-09-11T22:46:30", "200", "/x", APPENDED_DURATION, address),
        {"customer_from": "%a"},
    )
    for address in KASSNER_ADDRESSES
]
NGINX_CASES += [
    Case(
        KASSNER_IP,
        "nginx",
        '$remote_addr:$remote_port [$time_local] "$request" $status $request_time',
        f'{address}:44782 [11/Sep/2013:22:46:30 +0000] "GET /x HTTP/1.1" 200 0.001',
        Want("2013-09-11T22:46:30", "200", "/x", "0.001", address),
        {"customer_from": "$remote_addr"},
    )
    for address in KASSNER_ADDRESSES
]

LNAV_CADDY = "tstack/lnav test/logfile_caddy_log.0"
CADDY_FIELDS = "time=ts,customer=request.remote_ip,path=request.uri,status=status,duration=duration"
CADDY_HEADERS = (
    '"headers":{"Cookie":["REDACTED"],"User-Agent":["Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:142.0) '
    'Gecko/20100101 Firefox/142.0"],"If-None-Match":["\\"ddnp8sh5vg3i58\\""],"Sec-Fetch-User":["?1"]}'
)


def caddy_access(ts: str, port: str, uri: str, duration: str, size: str, status: str) -> str:
    """A Caddy access line of the peer's file (the docker-compose prefix `caddy  | ` removed; the
    request headers shortened to four of the peer's)."""
    return (
        f'{{"level":"info","ts":{ts},"logger":"http.log.access","msg":"handled request","request":{{'
        f'"remote_ip":"172.19.0.1","remote_port":"{port}","client_ip":"172.19.0.1","proto":"HTTP/1.1",'
        f'"method":"GET","host":"localhost","uri":"{uri}",{CADDY_HEADERS}}},"bytes_read":0,"user_id":"",'
        f'"duration":{duration},"size":{size},"status":{status},"resp_headers":{{"Server":["Caddy"]}}}}'
    )


JSON_CASES = [
    Case(LNAV_CADDY, "json", CADDY_FIELDS, line, want)
    for line, want in (
        (
            caddy_access("1761019828.6153953", "46628", "/", "0.001674508", "0", "304"),
            Want("2025-10-21T04:10:28", "304", "/", "0.001674508", "172.19.0.1"),
        ),
        (
            caddy_access("1761019859.196494", "37882", "/", "0.001239398", "0", "304"),
            Want("2025-10-21T04:10:59", "304", "/", "0.001239398", "172.19.0.1"),
        ),
        (
            caddy_access("1761019942.9484386", "37882", "/", "0.00007314", "0", "304"),
            Want("2025-10-21T04:12:22", "304", "/", "0.000073140", "172.19.0.1"),
        ),
        (
            caddy_access("1761019957.9247544", "37882", "/index.html", "0.000073649", "188", "200"),
            Want("2025-10-21T04:12:37", "200", "/index.html", "0.000073649", "172.19.0.1"),
        ),
        # the server's own messages in the same file are no requests
        ('{"level":"info","ts":1761019822.3152757,"msg":"maxprocs: Leaving GOMAXPROCS=12: CPU quota undefined"}', None),
        ('{"level":"info","ts":1761019822.3154097,"msg":"using config from file","file":"/etc/caddy/Caddyfile"}', None),
        ('{"level":"info","ts":1761019822.31575,"msg":"adapted config to JSON","adapter":"caddyfile"}', None),
        ('{"level":"info","ts":1761019822.3164804,"msg":"serving initial configuration"}', None),
        ('{"level":"warn","ts":1761019831.8274047,"msg":"exiting; byeee!! \U0001f44b","signal":"SIGTERM"}', None),
        ('{"level":"info","ts":1761019831.827683,"msg":"shutdown complete","signal":"SIGTERM","exit_code":0}', None),
        ('caddy  | {"level":"info","ts":1761019847.6423035,"msg":"using config from file"}', None),
    )
]


APACHELOGS_TIMESTAMPS = "jwodder/apachelogs test/test_parse_apache_timestamp.py"
# the peer's %t values with the local time and offset it reads from each; the peer's three
# half-bracketed spellings of the first are left out (httpd writes both brackets)
APACHE_TIMESTAMPS = [
    ("31/Dec/1969:19:00:00 +0500", (1969, 12, 31, 19, 0, 0), (5, 0)),
    ("31/Dec/1969:19:00:00 -0500", (1969, 12, 31, 19, 0, 0), (-5, 0)),
    ("31/Dec/1969:19:00:00 +0130", (1969, 12, 31, 19, 0, 0), (1, 30)),
    ("31/Dec/1969:19:00:00 +0030", (1969, 12, 31, 19, 0, 0), (0, 30)),
    ("31/Dec/1969:19:00:00 -0030", (1969, 12, 31, 19, 0, 0), (0, -30)),
    ("31/Dec/1969:19:00:00 -0130", (1969, 12, 31, 19, 0, 0), (-1, -30)),
    ("02/Apr/2006:01:59:59 +0800", (2006, 4, 2, 1, 59, 59), (8, 0)),
    ("02/Apr/2006:01:59:59 -0800", (2006, 4, 2, 1, 59, 59), (-8, 0)),
    ("02/Apr/2006:02:30:00 +0700", (2006, 4, 2, 2, 30, 0), (7, 0)),
    ("02/Apr/2006:02:30:00 -0700", (2006, 4, 2, 2, 30, 0), (-7, 0)),
    ("02/Apr/2006:03:00:01 +0700", (2006, 4, 2, 3, 0, 1), (7, 0)),
    ("02/Apr/2006:03:00:01 -0700", (2006, 4, 2, 3, 0, 1), (-7, 0)),
    ("29/Oct/2006:00:59:59 +0700", (2006, 10, 29, 0, 59, 59), (7, 0)),
    ("29/Oct/2006:00:59:59 -0700", (2006, 10, 29, 0, 59, 59), (-7, 0)),
    ("29/Oct/2006:01:30:00 +0700", (2006, 10, 29, 1, 30, 0), (7, 0)),
    ("29/Oct/2006:01:30:00 -0700", (2006, 10, 29, 1, 30, 0), (-7, 0)),
    ("29/Oct/2006:01:30:00 +0800", (2006, 10, 29, 1, 30, 0), (8, 0)),
    ("29/Oct/2006:01:30:00 -0800", (2006, 10, 29, 1, 30, 0), (-8, 0)),
    ("29/Oct/2006:02:00:01 +0800", (2006, 10, 29, 2, 0, 1), (8, 0)),
    ("29/Oct/2006:02:00:01 -0800", (2006, 10, 29, 2, 0, 1), (-8, 0)),
    ("13/Feb/2009:18:31:30 +0500", (2009, 2, 13, 18, 31, 30), (5, 0)),
    ("13/Feb/2009:18:31:30 -0500", (2009, 2, 13, 18, 31, 30), (-5, 0)),
    ("01/Jan/2016:00:00:00 -0500", (2016, 1, 1, 0, 0, 0), (-5, 0)),
    ("03/Jan/2016:06:00:00 -0500", (2016, 1, 3, 6, 0, 0), (-5, 0)),
    ("04/Jan/2016:00:00:00 -0500", (2016, 1, 4, 0, 0, 0), (-5, 0)),
    ("05/Jan/2016:01:00:00 -0500", (2016, 1, 5, 1, 0, 0), (-5, 0)),
    ("06/Jan/2016:02:00:00 -0500", (2016, 1, 6, 2, 0, 0), (-5, 0)),
    ("07/Jan/2016:03:00:00 -0500", (2016, 1, 7, 3, 0, 0), (-5, 0)),
    ("08/Jan/2016:04:00:00 -0500", (2016, 1, 8, 4, 0, 0), (-5, 0)),
    ("09/Jan/2016:05:00:00 -0500", (2016, 1, 9, 5, 0, 0), (-5, 0)),
    ("02/Feb/2016:02:02:02 -0500", (2016, 2, 2, 2, 2, 2), (-5, 0)),
    ("29/Feb/2016:03:14:15 -0500", (2016, 2, 29, 3, 14, 15), (-5, 0)),
    ("03/Mar/2016:03:03:03 -0500", (2016, 3, 3, 3, 3, 3), (-5, 0)),
    ("13/Mar/2016:01:59:59 -0500", (2016, 3, 13, 1, 59, 59), (-5, 0)),
    ("13/Mar/2016:03:00:01 -0400", (2016, 3, 13, 3, 0, 1), (-4, 0)),
    ("13/Mar/2016:03:30:00 -0400", (2016, 3, 13, 3, 30, 0), (-4, 0)),
    ("04/Apr/2016:04:04:04 -0400", (2016, 4, 4, 4, 4, 4), (-4, 0)),
    ("05/May/2016:05:05:05 -0400", (2016, 5, 5, 5, 5, 5), (-4, 0)),
    ("13/May/2016:13:13:13 -0400", (2016, 5, 13, 13, 13, 13), (-4, 0)),
    ("06/Jun/2016:06:06:06 -0400", (2016, 6, 6, 6, 6, 6), (-4, 0)),
    ("07/Jul/2016:07:07:07 -0400", (2016, 7, 7, 7, 7, 7), (-4, 0)),
    ("08/Aug/2016:08:08:08 -0400", (2016, 8, 8, 8, 8, 8), (-4, 0)),
    ("09/Sep/2016:09:09:09 -0400", (2016, 9, 9, 9, 9, 9), (-4, 0)),
    ("10/Oct/2016:10:10:10 -0400", (2016, 10, 10, 10, 10, 10), (-4, 0)),
    ("06/Nov/2016:00:59:59 -0400", (2016, 11, 6, 0, 59, 59), (-4, 0)),
    ("06/Nov/2016:01:30:00 -0400", (2016, 11, 6, 1, 30, 0), (-4, 0)),
    ("06/Nov/2016:01:59:59 -0400", (2016, 11, 6, 1, 59, 59), (-4, 0)),
    ("06/Nov/2016:01:00:01 -0500", (2016, 11, 6, 1, 0, 1), (-5, 0)),
    ("06/Nov/2016:01:30:00 -0500", (2016, 11, 6, 1, 30, 0), (-5, 0)),
    ("06/Nov/2016:02:00:01 -0500", (2016, 11, 6, 2, 0, 1), (-5, 0)),
    ("07/Nov/2016:15:29:40 -0500", (2016, 11, 7, 15, 29, 40), (-5, 0)),
    ("11/Nov/2016:11:11:11 -0500", (2016, 11, 11, 11, 11, 11), (-5, 0)),
    ("12/Dec/2016:12:12:12 -0500", (2016, 12, 12, 12, 12, 12), (-5, 0)),
    ("01/Nov/2017:07:28:29 +0000", (2017, 11, 1, 7, 28, 29), (0, 0)),
    ("01/Nov/2017:07:28:29 -0400", (2017, 11, 1, 7, 28, 29), (-4, 0)),
    ("05/Nov/2017:01:01:01 -0400", (2017, 11, 5, 1, 1, 1), (-4, 0)),
    ("05/Nov/2017:01:59:59 -0400", (2017, 11, 5, 1, 59, 59), (-4, 0)),
    ("05/Nov/2017:02:01:01 -0400", (2017, 11, 5, 2, 1, 1), (-4, 0)),
    ("05/Nov/2017:01:01:01 -0500", (2017, 11, 5, 1, 1, 1), (-5, 0)),
    ("05/Nov/2017:01:59:59 -0500", (2017, 11, 5, 1, 59, 59), (-5, 0)),
    ("05/Nov/2017:02:01:01 -0500", (2017, 11, 5, 2, 1, 1), (-5, 0)),
]


def utc(local: tuple[int, ...], offset: tuple[int, int]) -> str:
    """The peer's expected local time and offset, in UTC as the cases store it."""
    zone = timezone(timedelta(hours=offset[0], minutes=offset[1]))
    return datetime(*local, tzinfo=zone).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


APACHE_CASES += [
    apache_d(
        APACHELOGS_TIMESTAMPS,
        COMMON,
        f'127.0.0.1 - - [{stamp}] "GET / HTTP/1.1" 200 2326',
        # a time before 1970 (five of the peer's six 31/Dec/1969 times) is refused: see
        # docs/log-formats.md, "Deliberate refusals"
        None if utc(local, offset) < "1970" else Want(utc(local, offset), "200", "/", APPENDED_DURATION, "127.0.0.1"),
    )
    for stamp, local, offset in APACHE_TIMESTAMPS
]

LOGPARSER_NGINX = (
    "nielsbasjes/logparser httpdlog/httpdlog-parser/src/test/java/nl/basjes/parse/httpdlog/NginxLogFormatTest.java"
)
LOGPARSER_NGINX_JSON = (
    "nielsbasjes/logparser httpdlog/httpdlog-parser/src/test/java/nl/basjes/parse/httpdlog/NginxLogFormatJsonTest.java"
)
NGINX_CLASSIC = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'
)
SLICEHOST_LINE = (
    '123.65.150.10 - - [23/Aug/2010:03:50:59 +0000] "POST /wordpress3/wp-admin/admin-ajax.php HTTP/1.1" 200 2 '
    '"http://www.example.com/wordpress3/wp-admin/post-new.php" "Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_6_4; '
    'en-US) AppleWebKit/534.3 (KHTML, like Gecko) Chrome/6.0.472.25 Safari/534.3"'
)
SLICEHOST_WANT = Want("2010-08-23T03:50:59", "200", "/wordpress3/wp-admin/admin-ajax.php", "2", "123.65.150.10")
COMPARE_LINE = (
    '1.2.3.4 - - [23/Aug/2010:03:50:59 +0000] "POST /foo.html?aap&noot=mies HTTP/1.1" 200 2 '
    '"http://www.example.com/bar.html?wim&zus=jet" "Niels Basjes/1.0"'
)
NGINX_CASES += [
    nginx_size(LOGPARSER_NGINX, NGINX_CLASSIC, SLICEHOST_LINE, SLICEHOST_WANT),
    nginx_size(LOGPARSER_NGINX, "combined", SLICEHOST_LINE, SLICEHOST_WANT),
    nginx_size(
        LOGPARSER_NGINX, NGINX_CLASSIC, COMPARE_LINE, Want("2010-08-23T03:50:59", "200", "/foo.html", "2", "1.2.3.4")
    ),
]
APACHE_CASES += [
    # the same line read by the peer's Apache parser must give what its nginx parser gives
    apache_d(
        LOGPARSER_NGINX,
        '%h - %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
        COMPARE_LINE,
        Want("2010-08-23T03:50:59", "200", "/foo.html", APPENDED_DURATION, "1.2.3.4"),
    )
]
# testFullTestAllFields: every variable of nginx 1.10 once, each as `# "$name" `
ALL_FIELDS = (
    ("status", "200"),
    ("time_iso8601", "2017-01-03T15:56:36+01:00"),
    ("time_local", "03/Jan/2017:15:56:36 +0100"),
    ("arg_name", "-"),
    ("args", "aap&noot=&mies=wim"),
    ("query_string", "aap&noot=&mies=wim"),
    ("binary_remote_addr", "\\x7F\\x00\\x00\\x01"),
    ("body_bytes_sent", "436"),
    ("bytes_sent", "694"),
    ("connection", "5"),
    ("connection_requests", "4"),
    ("content_length", "-"),
    ("content_type", "-"),
    ("cookie_name", "-"),
    ("document_root", "/var/www/html"),
    ("host", "localhost"),
    ("hostname", "hackbox"),
    ("http_name", "-"),
    ("https", ""),
    ("is_args", "?"),
    ("limit_rate", "0"),
    ("msec", "1483455396.639"),
    ("nginx_version", "1.10.0"),
    ("pid", "5137"),
    ("pipe", "."),
    ("proxy_protocol_addr", ""),  # nginx 1.10 wrote nothing for a connection without the PROXY protocol
    ("realpath_root", "/var/www/html"),
    ("remote_addr", "127.0.0.1"),
    ("remote_port", "44448"),
    ("remote_user", "-"),
    ("request", "GET /?aap&noot=&mies=wim HTTP/1.1"),
    ("request_body", "-"),
    ("request_body_file", "-"),
    ("request_completion", "OK"),
    ("request_filename", "/var/www/html/index.html"),
    ("request_length", "491"),
    ("request_method", "GET"),
    ("request_time", "0.000"),
    ("request_uri", "/?aap&noot=&mies=wim"),
    ("scheme", "http"),
    ("sent_http_etag", "W/\\x22586bbb8b-29e\\x22"),
    ("sent_http_last_modified", "Tue, 03 Jan 2017 14:56:11 GMT"),
    ("server_addr", "127.0.0.1"),
    ("server_name", "_"),
    ("server_port", "80"),
    ("server_protocol", "HTTP/1.1"),
    ("tcpinfo_rtt", "52"),
    ("tcpinfo_rttvar", "30"),
    ("tcpinfo_snd_cwnd", "10"),
    ("tcpinfo_rcv_space", "43690"),
    ("uri", "/index.html"),
    ("document_uri", "/index.html"),
    (
        "http_user_agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/54.0.2840.100 Safari/537.36",
    ),
    ("http_referer", "http://localhost/"),
)
BY_ADDRESS = {"customer_from": "$remote_addr"}
NGINX_CASES += [
    Case(
        LOGPARSER_NGINX,
        "nginx",
        "".join(f'# "${name}" ' for name, _ in ALL_FIELDS) + "#",
        "".join(f'# "{value}" ' for _, value in ALL_FIELDS) + "#",
        # the first time ($time_iso8601) and the path of the request line ($uri is after nginx's index)
        Want("2017-01-03T14:56:36", "200", "/", "0.000", "127.0.0.1"),
        BY_ADDRESS,
    )
]
# validateAllFields: the peer's single-variable lines, framed with the other stored values
NGINX_CASES += [
    Case(LOGPARSER_NGINX, "nginx", fmt, line, want, BY_ADDRESS)
    for fmt, line, want in (
        (
            '$time_iso8601 $remote_addr "$request" $status $request_time',
            '2017-01-03T15:56:36+01:00 127.0.0.1 "GET / HTTP/1.1" 200 0.000',
            Want("2017-01-03T14:56:36", "200", "/", "0.000", "127.0.0.1"),
        ),
        (
            '$msec $remote_addr "$request" $status $request_time',
            '1483455396.639 127.0.0.1 "GET / HTTP/1.1" 200 0.000',
            Want("2017-01-03T14:56:36", "200", "/", "0.000", "127.0.0.1"),
        ),
        (
            '[$time_local] $remote_addr "$request" $status $request_time',
            '[03/Jan/2017:15:56:36 +0100] 127.0.0.1 "GET / HTTP/1.1" 200 123.456',
            Want("2017-01-03T14:56:36", "200", "/", "123.456", "127.0.0.1"),
        ),
        (
            "[$time_local] $remote_addr $request_uri $status $request_time",
            "[03/Jan/2017:15:56:36 +0100] 127.0.0.1 /?aap&noot=&mies=wim 200 0.000",
            Want("2017-01-03T14:56:36", "200", "/", "0.000", "127.0.0.1"),
        ),
        (
            "[$time_local] $remote_addr $uri $status $request_time",
            "[03/Jan/2017:15:56:36 +0100] 127.0.0.1 /index.html 200 0.000",
            Want("2017-01-03T14:56:36", "200", "/index.html", "0.000", "127.0.0.1"),
        ),
        (
            '[$time_local] "$remote_addr" "$request" "$status" "$request_time" "$proxy_protocol_addr"',
            '[03/Jan/2017:15:56:36 +0100] "127.0.0.1" "GET / HTTP/1.1" "200" "0.000" ""',
            Want("2017-01-03T14:56:36", "200", "/", "0.000", "127.0.0.1"),
        ),
    )
]
NGINX_CASES += [
    # the peer's JSON log_format has no time variable: logpulse refuses such a format
    Case(
        LOGPARSER_NGINX_JSON,
        "nginx",
        '{ "message":"$request_uri","client": "$remote_addr","auth": "$remote_user", "bytes": "$body_bytes_sent", '
        '"time_in_sec": "$request_time", "response": "$status", "verb":"$request_method","referrer": '
        '"$http_referer", "site":"$http_host","httpversion":"$server_protocol","logtype":"accesslog","agent": '
        '"$http_user_agent" }',
        "",
        REFUSED_AT_START,
        BY_ADDRESS,
    )
]

LOGPARSER_JSON = (
    "nielsbasjes/logparser httpdlog/httpdlog-parser/src/test/java/nl/basjes/parse/httpdlog/JsonLogFormatTest.java"
)
HTTPD_JSON_FORMAT = (
    '{"@timestamp":"%{%Y-%m-%dT%H:%M:%S %z}t","mod_proxy":{"x-forwarded-for":"%{X-Forwarded-For}i"},'
    '"mod_headers":{"referer":"%{Referer}i","user-agent":"%{User-Agent}i","host":"%{Host}i"},"mod_log":{'
    '"server_name":"%V","remote_logname":"%l","remote_user":"%u","first_request":"%r","last_request_status":"%>s",'
    '"response_size_bytes":%B,"duration_usec":%D,"@version":1 }'
)
UA_CHROME_46 = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/46.0.2490.86 Safari/537.36"
)


def httpd_json(referer: str, request: str, status: str, size: str, usec: str) -> str:
    """A line httpd wrote with the peer's LogFormat: its outer object is never closed (one `}` at the
    end for two `{`), and its time has a space before the offset."""
    return (
        f'{{"@timestamp":"2015-11-25T15:24:45 +0100","mod_proxy":{{"x-forwarded-for":"-"}},"mod_headers":{{'
        f'"referer":"{referer}","user-agent":"{UA_CHROME_46}","host":"localhost"}},"mod_log":{{'
        f'"server_name":"localhost","remote_logname":"-","remote_user":"-","first_request":"GET {request} HTTP/1.1",'
        f'"last_request_status":"{status}","response_size_bytes":{size},"duration_usec":{usec},"@version":1 }}'
    )


HTTPD_JSON_FIELDS = (
    "time=@timestamp,customer=mod_log.server_name,path=mod_log.first_request,"
    "status=mod_log.last_request_status,duration=mod_log.duration_usec"
)
OPEN_SANS = "http://localhost/noindex/css/open-sans.css"
JSON_CASES += [
    # the peer reads them by its format as a template; they are not JSON, and logpulse refuses them
    Case(LOGPARSER_JSON, "json", HTTPD_JSON_FIELDS, httpd_json(*fields), None, {"duration_unit": "us"})
    for fields in (
        ("-", "/", "403", "4897", "909"),
        ("http://localhost/", "/noindex/css/bootstrap.min.css", "200", "19341", "657"),
        ("http://localhost/", "/noindex/css/open-sans.css", "200", "5081", "680"),
        ("http://localhost/", "/images/apache_pb.gif", "200", "2326", "728"),
        ("http://localhost/", "/images/poweredby.png", "200", "3956", "498"),
        (OPEN_SANS, "/noindex/css/fonts/Light/OpenSans-Light.woff", "404", "241", "147"),
        (OPEN_SANS, "/noindex/css/fonts/Bold/OpenSans-Bold.woff", "404", "239", "536"),
        (OPEN_SANS, "/noindex/css/fonts/Bold/OpenSans-Bold.ttf", "404", "238", "347"),
        (OPEN_SANS, "/noindex/css/fonts/Light/OpenSans-Light.ttf", "404", "240", "268"),
        ("http://localhost/", "/favicon.ico", "404", "209", "342"),
    )
]
# read as Apache's own format instead, the strftime time is refused at start
APACHE_CASES += [Case(LOGPARSER_JSON, "apache", HTTPD_JSON_FORMAT, "", REFUSED_AT_START, {"customer_from": "%V"})]

NGINX_TESTS = "nginx/nginx-tests access_log.t"
# what nginx itself wrote in its test, after a frame of the stored values the test's formats lack
NGINX_FRAME = "$remote_addr [$time_local] $request_time "
FRAME_LINE = "127.0.0.1 [10/Oct/2016:10:00:00 +0000] 0.001 "
NGINX_CASES += [
    Case(
        NGINX_TESTS,
        "nginx",
        NGINX_FRAME + fmt,
        FRAME_LINE + written,
        Want("2016-10-10T10:00:00", "200", path, "0.001", "127.0.0.1"),
        BY_ADDRESS,
    )
    for fmt, written, path in [
        ("$uri:$status", f"{uri}:200", uri)
        for uri in (
            "/filtered/good",
            "/filtered/work",
            "/filtered/complex/one",
            "/filtered/complex/two",
            "/filtered/complex/either1",
            "/filtered/complex/either2",
            "/filtered/complex/either3",
            "/filtered/complex/either4",
            "/filtered/noreuse1/good",
            "/filtered/noreuse2/good",
            "/multi",
            "/varlog",
        )
    ]
    + [("long line $uri:$status", "long line /multi:200", "/multi")]
]
NGINX_CASES += [
    nginx_size(
        NGINX_TESTS,
        "combined",
        '127.0.0.1 - - [10/Oct/2016:10:00:00 +0000] "GET /combined HTTP/1.0" 200 2 "-" "-"',
        Want("2016-10-10T10:00:00", "200", "/combined", "2", "127.0.0.1"),
    ),
    Case(
        NGINX_TESTS,
        "nginx",
        '[$time_local] "$request" $status $request_time $remote_addr:$remote_port:$server_addr:$server_port',
        '[10/Oct/2016:10:00:00 +0000] "GET /addr HTTP/1.0" 404 0.001 127.0.0.1:40536:127.0.0.1:8080',
        Want("2016-10-10T10:00:00", "404", "/addr", "0.001", "127.0.0.1"),
        BY_ADDRESS,
    ),
    # `$uri$arg_b$arg_c`: a path touching free text, which no line can split: refused at start
    Case(NGINX_TESTS, "nginx", NGINX_FRAME + "$status $uri$arg_b$arg_c", "", REFUSED_AT_START, BY_ADDRESS),
]

CASES = NGINX_CASES + APACHE_CASES + JSON_CASES
