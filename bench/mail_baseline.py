"""Baseline for bench/mail.sh: the same mail batch as a plain Python script - build each
message with the email package and send it with smtplib over one connection, one after
another, as a typical cron script would. Prints {"messages", "seconds", "per_second"}."""
import json
import smtplib
import sys
import time
from email.message import EmailMessage


def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    start = time.monotonic()
    with smtplib.SMTP(host, port) as smtp:
        for i in range(count):
            msg = EmailMessage()
            msg["From"] = "Support <support@example.com>"
            msg["To"] = "customer%d@example.com" % i
            msg["Subject"] = "How likely are you to recommend us? (#%d)" % i
            msg.set_content("Hello customer %d,\n\nOne question: how likely are you to "
                            "recommend us to a friend?\n" % i)
            smtp.send_message(msg)
    seconds = time.monotonic() - start
    print(json.dumps({"messages": count, "seconds": seconds, "per_second": count / seconds}))


if __name__ == "__main__":
    main()
