# frozen_string_literal: true

# gitlab-oracle: runs GitLab's dotenv upload rules in real Ruby on a fixed set of inputs and
# writes the results as test data for kstep's GitLab flavor: ../../tests/gitlab_vectors.json,
# read by ../../tests/conformance.rs.
#
# The rules are transcribed from gitlab app/services/ci/parse_dotenv_artifact_service.rb
# (validate!, parse!, scan_line!), lib/gitlab/encoding_helper.rb (strip_bom; the UTF-16LE
# conversion CharlockHolmes performs for a blob with a byte-order mark) and
# app/models/concerns/ci/has_variable.rb (key validations, ActiveModel message order). What
# this oracle adds over reading the Ruby is Ruby itself: each_line, the regexp, String#strip,
# [[:space:]], String#length, Hash ordering.
#
# The file is JSON with one case per line: the blob as {"text": …} (its UTF-8 bytes) or
# {"utf16le": …} (the bytes FF FE, then the text in UTF-16LE), then {"vars": [[key, value]…]}
# in GitLab's order or {"error": GitLab's message}. Strings are escaped by hand so that invisible
# characters (C0/C1 controls, U+2028, U+FEFF) show as \uXXXX escapes in review.
#
# Run: ruby oracle.rb > ../../tests/gitlab_vectors.json

SIZE_LIMIT = 5120
VARIABLE_LIMIT = 20

def decode(blob)
  utf8 = blob.dup.force_encoding(Encoding::UTF_8)
  return utf8 if utf8.valid_encoding?
  raise "not a case for this oracle: #{blob.inspect}" unless blob.start_with?("\xFF\xFE".b) && !blob.start_with?("\xFF\xFE\x00\x00".b)

  # CharlockHolmes detects UTF-16LE (BOM, confidence 100) and ICU converts it, BOM included.
  blob.dup.force_encoding(Encoding::UTF_16LE).encode(Encoding::UTF_8, invalid: :replace, undef: :replace)
end

def key_errors(key)
  key = key.to_s.strip
  errors = []
  errors << "Key can't be blank" if key.match?(/\A[[:space:]]*\z/)
  errors << 'Key is too long (maximum is 255 characters)' if key.length > 255
  errors << "Key can contain only letters, digits and '_'." unless key.match?(/\A[a-zA-Z0-9_]+\z/)
  errors
end

# [:ok, [[key, value], ...]] or [:error, message], as the service answers.
def gitlab(blob)
  return [:error, "Dotenv Artifact Too Big. Maximum Allowable Size: #{SIZE_LIMIT}"] unless blob.bytesize < SIZE_LIMIT

  text = decode(blob).delete_prefix("\xEF\xBB\xBF".dup.force_encoding(Encoding::UTF_8))
  variables = {}
  text.each_line do |line|
    result = line.scan(/^(.*?)=(.*)$/).last
    return [:error, 'Invalid Format'] if result.nil?

    key, value = result.each(&:strip!)
    variables[key] = value
  end
  return [:error, "Dotenv files cannot have more than #{VARIABLE_LIMIT} variables"] if variables.size > VARIABLE_LIMIT

  variables.each_key do |key|
    errors = key_errors(key)
    return [:error, "Validation failed: #{errors.join(', ')}"] unless errors.empty?
  end
  [:ok, variables.to_a]
end

# s as a JSON string.
def str_lit(s)
  out = +'"'
  s.each_char do |c|
    o = c.ord
    out << case c
           when '"' then '\\"'
           when '\\' then '\\\\'
           when "\n" then '\\n'
           when "\r" then '\\r'
           when "\t" then '\\t'
           else
             o < 0x20 || o == 0x7f || (o >= 0x80 && o < 0xa0) || [0x2028, 0x2029, 0xfeff].include?(o) ? format('\\u%04x', o) : c
           end
  end
  out << '"'
end

# The blob's field: its text when it is UTF-8, else the text it encodes after a UTF-16LE BOM.
def blob_field(blob)
  utf8 = blob.dup.force_encoding(Encoding::UTF_8)
  return "\"text\": #{str_lit(utf8)}" if utf8.valid_encoding?

  utf16 = blob.byteslice(2..).force_encoding(Encoding::UTF_16LE)
  raise "not a case for this oracle: #{blob.inspect}" unless blob.start_with?("\xFF\xFE".b) && utf16.valid_encoding?

  "\"utf16le\": #{str_lit(utf16.encode(Encoding::UTF_8))}"
end

def utf16le(text)
  "\xFF\xFE".b + text.encode(Encoding::UTF_16LE).b
end

HAND_PICKED = [
  'KEY1=VAR1', "KEY1=VAR1\nKEY2=VAR2\n", "KEY1=VAR1\nKEY2=VAR2\nKEY2=VAR3\nKEY1=VAR4\n", 'KEY1 =VAR1',
  'KEY=VARCONTAINING=EQLS', 'KEY1=VAR1KEY2=VAR1', '🛹=skateboard', 'skateboard=🛹', 'K E Y 1=VAR1', 'KEY1=V A R 1',
  'KEY1="VAR1"', "KEY1='VAR1'", 'KEY1="  VAR1  "', '=VAR1', 'KEY1=', "{ 'KEY1': 'VAR1' }",
  "KEY1=VAR1\nKEY2=${KEY1}_Test\n", "KEY1=VAR1\n\nKEY2=VAR2\n", "KEY1=VAR1         # This is variable\n",
  '', "\n", "A=b\n\n", "# c\nA=b", "A=b\r\nC=d\r\n", "A=b\rC=d\n", "\0A\v=\f v \0", "A=\u00a0v\u00a0", "A=x\0y",
  "\u00a0=v", "\u3000=v", "\u2028=v", 'export A=b', 'A.B=c', "A\t=\tb", "A=b\u2028C=d", "A=b\u0085", "\uFEFFA=1",
  "\uFEFF\uFEFFA=1", "\uFEFF", "#{'K' * 255}=v", "#{'K' * 256}=v", "#{'-' * 256}=v", "#{'é' * 128}=v", '1A=b', '_=c',
  "A=1\nA=\nA= 2 ", " A = 1 \n", "A=1\n \n", "A=1\n\t", "A=1\n=", "==", '=', ' = ', "A=\"\nB=\"",
  (1..21).map { |i| "K#{i}=v\n" }.join, (1..21).map { |i| "K#{i % 20}=v\n" }.join,
  (1..25).map { |i| "K#{i}=v\n" }.join + "bad-key=1\n", "bad-key=1\n" + (1..25).map { |i| "K#{i}=v\n" }.join + "\n",
  "K=#{'v' * 5117}", "K=#{'v' * 5118}", "A B=1\nA B=2", "a-b=1\nc.d=2\n", "A=1\nb-c=2\nD=3",
].freeze

fragments_key = (%w[A B KEY a_1 1 A B KEY Z9] * 3 + ['', ' ', 'A B', 'export A', 'é', "\t", "\0", 'K-1', '#A', "\u00a0"]).freeze
fragments_sep = (['='] * 6 + ['==', ' = ', '', "\t=\t", '= ']).freeze
fragments_value = ['v', '"q"', "'s'", '#c', ' ', "\t", "\r", "\0", "\v", "\f", '${A}', "\u00a0", '=', 'é', "\u2028",
                   "\u0085", 'w x'].freeze
joins = (["\n"] * 6 + ["\r\n", "\r\n", "\n\n", "\r"]).freeze

rng = Random.new(20_240_501)
cases = HAND_PICKED.map { |c| c.dup.force_encoding(Encoding::BINARY) }
cases += HAND_PICKED.first(20).map { |c| utf16le(c) }
cases << utf16le("MY_ENV_VAR=true\r\nTEST2=false\r\n")
1500.times do
  statements = Array.new(1 + rng.rand(4)) do
    fragments_key.sample(random: rng) + fragments_sep.sample(random: rng) +
      Array.new(rng.rand(4)) { fragments_value.sample(random: rng) }.join
  end
  text = statements.join(joins.sample(random: rng))
  text += "\n" if rng.rand(3).zero?
  # A UTF-16LE text starting with U+0000 would begin FF FE 00 00, which is UTF-32LE's BOM.
  utf16 = rng.rand(20).zero? && !text.start_with?("\0")
  cases << (utf16 ? utf16le(text) : text.dup.force_encoding(Encoding::BINARY))
end

puts '{'
puts "  \"generator\": #{str_lit("conformance/gitlab-oracle: GitLab's dotenv rules run in Ruby #{RUBY_VERSION}")},"
puts "  \"limits\": {\"max_bytes\": #{SIZE_LIMIT}, \"max_vars\": #{VARIABLE_LIMIT}},"
puts '  "cases": ['
cases.each_with_index do |blob, i|
  status, result = gitlab(blob)
  answer = if status == :ok
             "\"vars\": [#{result.map { |k, v| "[#{str_lit(k)}, #{str_lit(v)}]" }.join(', ')}]"
           else
             "\"error\": #{str_lit(result)}"
           end
  puts "    {#{blob_field(blob)}, #{answer}}#{i == cases.size - 1 ? '' : ','}"
end
puts '  ]'
puts '}'
