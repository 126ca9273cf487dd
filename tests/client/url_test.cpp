// SPDX-License-Identifier: MIT
// URLs into options, and every kind of bad URL into a message that names the bad part.
#include "client/error.hpp"
#include "client/url.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace redring::client {
namespace {

TEST(Url, RedisUrls) {
  options o;
  ASSERT_FALSE(parse_url("redis://localhost", o));
  EXPECT_EQ(o.host, "localhost");
  EXPECT_EQ(o.port, 6379);
  options full;
  ASSERT_FALSE(parse_url("redis://us%40er:p%3Ass@10.1.2.3:7000/5?timeout=250&name=web&protocol=2&connect_timeout=90", full));
  EXPECT_EQ(full.user, "us@er");
  EXPECT_EQ(full.password, "p:ss");
  EXPECT_EQ(full.host, "10.1.2.3");
  EXPECT_EQ(full.port, 7000);
  EXPECT_EQ(full.database, 5);
  EXPECT_EQ(full.command_timeout.count(), 250);
  EXPECT_EQ(full.connect_timeout.count(), 90);
  EXPECT_EQ(full.client_name, "web");
  EXPECT_EQ(full.protocol, 2);
  options v6;
  ASSERT_FALSE(parse_url("redis://:secret@[::1]:6380", v6));
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 6380);
  EXPECT_EQ(v6.user, "");
  EXPECT_EQ(v6.password, "secret");
}

// The userinfo ends at the authority's last '@' (RFC 3986 parsers: WHATWG URL, Python's urllib), so
// a password with an unencoded '@' keeps it; an '@' in the query or path is not userinfo.
TEST(Url, UnencodedAtSignsBelongToThePassword) {
  options o;
  ASSERT_FALSE(parse_url("redis://u:p@ss@host:7000/3?name=a@b", o));
  EXPECT_EQ(o.user, "u");
  EXPECT_EQ(o.password, "p@ss");
  EXPECT_EQ(o.host, "host");
  EXPECT_EQ(o.port, 7000);
  EXPECT_EQ(o.database, 3);
  EXPECT_EQ(o.client_name, "a@b");
  options no_userinfo;
  no_userinfo.user = "default-user";
  ASSERT_FALSE(parse_url("redis://host?name=x@y", no_userinfo));
  EXPECT_EQ(no_userinfo.host, "host");
  EXPECT_EQ(no_userinfo.user, "default-user");
  options unix_socket;
  ASSERT_FALSE(parse_url("unix://app:p@w@/tmp/at@sign.sock", unix_socket));
  EXPECT_EQ(unix_socket.password, "p@w");
  EXPECT_EQ(unix_socket.unix_path, "/tmp/at@sign.sock");
}

TEST(Url, UnixUrls) {
  options o;
  ASSERT_FALSE(parse_url("unix:///run/redis/redis.sock?db=3", o));
  EXPECT_EQ(o.unix_path, "/run/redis/redis.sock");
  EXPECT_EQ(o.database, 3);
  options auth;
  ASSERT_FALSE(parse_url("unix://app:pw@/tmp/r.sock", auth));
  EXPECT_EQ(auth.unix_path, "/tmp/r.sock");
  EXPECT_EQ(auth.user, "app");
  EXPECT_EQ(auth.password, "pw");
}

TEST(Url, RedissTurnsTlsOnWithItsOptions) {
  options o;
  ASSERT_FALSE(parse_url("rediss://u:pw@host:6380/2?tls_ca_file=%2Fetc%2Fca.pem&tls_cert_file=/c.pem&tls_key_file=/k.pem"
                         "&tls_server_name=redis.example&tls_ca_path=/certs",
                         o));
  EXPECT_TRUE(o.tls.enabled);
  EXPECT_TRUE(o.tls.verify_peer);
  EXPECT_EQ(o.host, "host");
  EXPECT_EQ(o.port, 6380);
  EXPECT_EQ(o.database, 2);
  EXPECT_EQ(o.password, "pw");
  EXPECT_EQ(o.tls.ca_file, "/etc/ca.pem");
  EXPECT_EQ(o.tls.ca_path, "/certs");
  EXPECT_EQ(o.tls.cert_file, "/c.pem");
  EXPECT_EQ(o.tls.key_file, "/k.pem");
  EXPECT_EQ(o.tls.server_name, "redis.example");
  ASSERT_FALSE(parse_url("rediss://h?tls_verify=no", o));
  EXPECT_FALSE(o.tls.verify_peer);
  // redis:// and unix:// on options that had TLS on turn it off.
  ASSERT_FALSE(parse_url("redis://h", o));
  EXPECT_FALSE(o.tls.enabled);
  o.tls.enabled = true;
  ASSERT_FALSE(parse_url("unix:///tmp/r.sock", o));
  EXPECT_FALSE(o.tls.enabled);
}

TEST(Url, TlsOptionsNeedRediss) {
  std::string why;
  options o;
  EXPECT_EQ(parse_url("redis://h?tls_ca_file=/ca.pem", o, &why), errc::invalid_url);
  EXPECT_NE(why.find("rediss://"), std::string::npos) << why;
  EXPECT_EQ(parse_url("unix:///tmp/r.sock?tls_verify=no", o, &why), errc::invalid_url);
  EXPECT_NE(why.find("rediss://"), std::string::npos) << why;
  EXPECT_EQ(parse_url("rediss://h?tls_verify=maybe", o, &why), errc::invalid_url);
  EXPECT_NE(why.find("tls_verify"), std::string::npos) << why;
  EXPECT_EQ(parse_url("rediss://h?tls_cipher=x", o, &why), errc::invalid_url);
  EXPECT_NE(why.find("unknown option 'tls_cipher'"), std::string::npos) << why;
  EXPECT_FALSE(o.tls.enabled);  // refused URLs changed nothing
}

TEST(Url, BadUrlsNameTheBadPart) {
  const std::pair<const char*, const char*> cases[] = {
      {"localhost:6379", "scheme"},          {"http://x", "unknown scheme 'http'"},
      {"redis://h:0", "port"},               {"redis://h:65536", "port"},
      {"redis://h:abc", "port"},             {"redis://h:", "empty port"},
      {"redis://h/x", "database"},           {"redis://h/-1", "database"},
      {"redis://[::1", "IPv6"},              {"redis://[::1]x", "IPv6"},
      {"redis://h?db=x", "db"},              {"redis://h?timeout=-5", "timeout"},
      {"redis://h?protocol=4", "protocol"},  {"redis://h?bogus=1", "unknown option 'bogus'"},
      {"redis://h?db", "option without a value"}, {"redis://u:%zz@h", "percent-encoding"},
      {"unix://relative.sock", "absolute"},   {"unix://", "absolute"},
  };
  for (const auto& [url, part] : cases) {
    options o;
    std::string why;
    EXPECT_EQ(parse_url(url, o, &why), errc::invalid_url) << url;
    EXPECT_NE(why.find(part), std::string::npos) << url << " -> " << why;
  }
}

TEST(Url, EmptyHostsFragmentsAndLongSocketPathsAreRefused) {
  const std::pair<std::string, const char*> cases[] = {
      {"redis://[]:6379", "empty IPv6 host"},
      {"redis://h#frag", "'#'"},
      {"unix:///" + std::string(max_unix_path, 'x'), "longer than 107"},
  };
  for (const auto& [url, part] : cases) {
    options o;
    std::string why;
    EXPECT_EQ(parse_url(url, o, &why), errc::invalid_url) << url;
    EXPECT_NE(why.find(part), std::string::npos) << url << " -> " << why;
  }
  options longest;
  const std::string path = "/" + std::string(max_unix_path - 1, 'x');
  ASSERT_FALSE(parse_url("unix://" + path, longest));
  EXPECT_EQ(longest.unix_path, path);
}

TEST(Url, SentinelUrls) {
  options o;
  ASSERT_FALSE(parse_url("redis+sentinel://app:pw@10.0.0.1,sentinel-b:26380,[::1]:26381/my%20master/2"
                         "?sentinel_role=replica&sentinel_password=s%40cret&sentinel_user=watcher&sentinel_timeout=150",
                         o));
  EXPECT_EQ(o.sentinel.master_name, "my master");
  ASSERT_EQ(o.sentinel.sentinels.size(), 3u);
  EXPECT_EQ(o.sentinel.sentinels[0].host, "10.0.0.1");
  EXPECT_EQ(o.sentinel.sentinels[0].port, 26379);  // Sentinel's default port
  EXPECT_EQ(o.sentinel.sentinels[1].host, "sentinel-b");
  EXPECT_EQ(o.sentinel.sentinels[1].port, 26380);
  EXPECT_EQ(o.sentinel.sentinels[2].host, "::1");
  EXPECT_EQ(o.sentinel.sentinels[2].port, 26381);
  EXPECT_EQ(o.sentinel.role, sentinel_role::replica);
  EXPECT_EQ(o.sentinel.user, "watcher");
  EXPECT_EQ(o.sentinel.password, "s@cret");
  EXPECT_EQ(o.sentinel.timeout.count(), 150);
  EXPECT_EQ(o.user, "app");  // the userinfo and db are the servers'
  EXPECT_EQ(o.password, "pw");
  EXPECT_EQ(o.database, 2);
  EXPECT_FALSE(o.tls.enabled);
  options tls;
  ASSERT_FALSE(parse_url("rediss+sentinel://h/m?tls_ca_file=/ca.pem", tls));
  EXPECT_TRUE(tls.tls.enabled);
  EXPECT_EQ(tls.tls.ca_file, "/ca.pem");
  EXPECT_EQ(tls.sentinel.master_name, "m");
  EXPECT_EQ(tls.sentinel.role, sentinel_role::master);
  // Another scheme turns Sentinel mode off.
  ASSERT_FALSE(parse_url("redis://localhost", tls));
  EXPECT_TRUE(tls.sentinel.master_name.empty());

  const std::pair<std::string, const char*> bad[] = {
      {"redis+sentinel://h1,h2", "no master name"},
      {"redis+sentinel://h1/", "no master name"},
      {"redis+sentinel:///m", "no sentinel address"},
      {"redis+sentinel://h1,,h2/m", "empty sentinel host"},
      {"redis+sentinel://h1:0/m", "port must be 1-65535"},
      {"redis+sentinel://h1/m/x", "database must be a number"},
      {"redis+sentinel://h1/m?sentinel_role=leader", "sentinel_role must be master or replica"},
      {"redis+sentinel://h1/m?sentinel_timeout=soon", "sentinel_timeout"},
      {"redis+sentinel://h1/m?sentinel_bogus=1", "unknown option 'sentinel_bogus'"},
      {"redis+sentinel://h1/m?cluster=yes", "a cluster has no sentinels"},
      {"redis://h1?sentinel_role=replica", "need a redis+sentinel:// URL"},
      {"unix:///tmp/s.sock?sentinel_password=x", "need a redis+sentinel:// URL"},
  };
  for (const auto& [url, part] : bad) {
    options b;
    std::string why;
    EXPECT_EQ(parse_url(url, b, &why), errc::invalid_url) << url;
    EXPECT_NE(why.find(part), std::string::npos) << url << " -> " << why;
  }
}

TEST(Url, SchemesAreCaseInsensitive) {
  options o;
  ASSERT_FALSE(parse_url("REDIS://h:7001", o));
  EXPECT_EQ(o.host, "h");
  EXPECT_EQ(o.port, 7001);
  options u;
  ASSERT_FALSE(parse_url("Unix:///tmp/r.sock", u));
  EXPECT_EQ(u.unix_path, "/tmp/r.sock");
  options tls;
  ASSERT_FALSE(parse_url("REDISS://h", tls));
  EXPECT_TRUE(tls.tls.enabled);
}

// A refused URL leaves the options as they were: nothing of its valid parts is applied.
TEST(Url, ARefusedUrlChangesNothing) {
  options o;
  o.host = "keep";
  o.database = 4;
  ASSERT_EQ(parse_url("redis://other:7000/2?bogus=1", o), errc::invalid_url);
  EXPECT_EQ(o.host, "keep");
  EXPECT_EQ(o.port, 6379);
  EXPECT_EQ(o.database, 4);
  ASSERT_EQ(parse_url("redis://u:pw@other?db=x", o), errc::invalid_url);
  EXPECT_FALSE(o.password.has_value());
  EXPECT_EQ(o.user, "");
}

// A password with an unencoded '/', '?' or '#' ends the authority early, and its text lands in the
// port, the path or the query: the message quoted it. Now it says what to do instead.
TEST(Url, AMisplacedPasswordIsNotQuoted) {
  for (const char* url : {"redis://admin:hunter2/x@db:6380", "redis://u:hunter2?x@h", "admin:hunter2@db:6380",
                          "redis://admin:hunter2/x@db:6380/1?bogus=1"}) {
    options o;
    std::string why;
    EXPECT_EQ(parse_url(url, o, &why), errc::invalid_url) << url;
    EXPECT_EQ(why.find("hunter2"), std::string::npos) << url << " -> " << why;
    EXPECT_NE(why.find("percent-encode"), std::string::npos) << url << " -> " << why;
  }
  // Without a scheme nothing says where a password is: the URL is not quoted at all.
  for (const char* url : {"localhost:6379?password=hunter2", "redis:/h?password=hunter2"}) {
    options bare;
    std::string message;
    EXPECT_EQ(parse_url(url, bare, &message), errc::invalid_url) << url;
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << url << " -> " << message;
  }
  // A '#' in the query would be glued to the last value (a password "hunter2#x"): refused.
  options fragment;
  std::string message;
  EXPECT_EQ(parse_url("redis://h/0?password=hunter2#x", fragment, &message), errc::invalid_url);
  EXPECT_NE(message.find("%23"), std::string::npos) << message;
  EXPECT_FALSE(fragment.password.has_value());
  options encoded;
  ASSERT_FALSE(parse_url("redis://h/0?password=hunter2%23x", encoded));
  EXPECT_EQ(encoded.password, "hunter2#x");
  options unix_hash;
  ASSERT_FALSE(parse_url("unix:///tmp/a#b.sock", unix_hash));  // a file name may hold a '#'
  EXPECT_EQ(unix_hash.unix_path, "/tmp/a#b.sock");
  // A '#' before the host's '@' is the password's (the userinfo ends at the authority's last '@').
  options hash;
  ASSERT_FALSE(parse_url("redis://u:hunter2#x@h", hash));
  EXPECT_EQ(hash.password, "hunter2#x");
  EXPECT_EQ(hash.host, "h");
  // Without an '@' past the host, the bad part is still named.
  options o;
  std::string why;
  EXPECT_EQ(parse_url("redis://u:pw@h:99999", o, &why), errc::invalid_url);
  EXPECT_NE(why.find("'99999'"), std::string::npos) << why;
}

TEST(Url, ClusterOptions) {
  options o;
  ASSERT_FALSE(parse_url("redis://seed:7000?cluster=yes&read_from=any", o));
  EXPECT_TRUE(o.cluster.enabled);
  EXPECT_EQ(o.cluster.reads, read_from::any);
  options p;
  ASSERT_FALSE(parse_url("redis://seed?cluster=true&read_from=prefer_replica", p));
  EXPECT_TRUE(p.cluster.enabled);
  EXPECT_EQ(p.cluster.reads, read_from::prefer_replica);
  options q;
  q.cluster.enabled = true;
  q.cluster.reads = read_from::any;
  ASSERT_FALSE(parse_url("redis://seed?cluster=0&read_from=primary", q));
  EXPECT_FALSE(q.cluster.enabled);
  EXPECT_EQ(q.cluster.reads, read_from::primary);
  for (const char* url : {"redis://seed?cluster=maybe", "redis://seed?read_from=replica"}) {
    options bad;
    std::string why;
    EXPECT_EQ(parse_url(url, bad, &why), errc::invalid_url) << url;
    EXPECT_FALSE(bad.cluster.enabled);
  }
}

TEST(Url, TrackingOption) {
  options o;
  ASSERT_FALSE(parse_url("redis://h?tracking=yes", o));
  EXPECT_TRUE(o.tracking.enabled);
  ASSERT_FALSE(parse_url("unix:///tmp/s.sock?tracking=0", o));
  EXPECT_FALSE(o.tracking.enabled);
  options bad;
  std::string why;
  EXPECT_EQ(parse_url("redis://h?tracking=sometimes", bad, &why), errc::invalid_url);
  EXPECT_NE(why.find("tracking must be yes, no or optin"), std::string::npos) << why;
  EXPECT_FALSE(bad.tracking.enabled);
  ASSERT_FALSE(parse_url("redis://h?tracking=optin", o));
  EXPECT_TRUE(o.tracking.enabled);
  EXPECT_TRUE(o.tracking.optin);
  ASSERT_FALSE(parse_url("redis://h?tracking=yes", o));
  EXPECT_FALSE(o.tracking.optin);
}

TEST(Url, FromEnvironment) {
  ::setenv("REDIS_URL", "redis://envhost:1234/2", 1);
  options o;
  ASSERT_FALSE(options_from_env(o));
  EXPECT_EQ(o.host, "envhost");
  EXPECT_EQ(o.port, 1234);
  EXPECT_EQ(o.database, 2);
  ::setenv("REDIS_URL", "nonsense", 1);
  EXPECT_EQ(options_from_env(o), errc::invalid_url);
  ::unsetenv("REDIS_URL");
  options untouched;
  EXPECT_FALSE(options_from_env(untouched));
  EXPECT_EQ(untouched.host, "127.0.0.1");
}

TEST(Url, FromCommandLineThenEnvironment) {
  char prog[] = "prog", url[] = "unix:///tmp/x.sock?db=3", bad[] = "http://x";
  char* with_url[] = {prog, url, nullptr};
  char* with_bad[] = {prog, bad, nullptr};
  char* without[] = {prog, nullptr};
  ::setenv("REDIS_URL", "redis://envhost:1234", 1);
  options a;
  ASSERT_FALSE(options_from_command_line(2, with_url, a));  // the argument wins over REDIS_URL
  EXPECT_EQ(a.unix_path, "/tmp/x.sock");
  EXPECT_EQ(a.database, 3);
  options b;
  ASSERT_FALSE(options_from_command_line(1, without, b));  // no argument: REDIS_URL
  EXPECT_EQ(b.host, "envhost");
  EXPECT_EQ(b.port, 1234);
  options c;
  std::string why;
  EXPECT_EQ(options_from_command_line(2, with_bad, c, &why), errc::invalid_url);
  EXPECT_FALSE(why.empty());
  ::unsetenv("REDIS_URL");
}

}  // namespace
}  // namespace redring::client
