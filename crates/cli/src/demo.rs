//! `kefu demo`: a realistic, bilingual demo dataset, the same for the same seed.
//!
//! Everything goes through the store's public operations, as the API would do it, with
//! a clock set back in time so that the history spreads over the past six months: teams
//! and people first, then customers arriving week by week, moving along the lifecycle
//! (potential → target → current, some lost and won back), buying, being visited and
//! called, and opening cases of every kind that are answered, transferred between
//! teams, merged, solved and closed.
//!
//! `kefu demo --write-csv FILE --rows N` instead writes N customer rows as CSV for
//! `kefu import customers` (the import benchmark), streaming, without touching the store.

use crate::{CliError, CliResult};
use kefu_domain::Labelled;
use kefu_domain::access::Role;
use kefu_domain::cases::{CaseKind, CaseStatus, Charging, MessageKind, Priority, ServiceMode};
use kefu_domain::contacts::ContactChannel;
use kefu_domain::customers::{
    CommunicationType, CustomFieldType, CustomerKind, InformationKind, InformationSource,
    LeadSource, LifecycleState, Position, Qualification, SupplyChainRole, ValueClass,
};
use kefu_domain::timeline::{Channel, ContentType, Direction, TimelineKind};
use kefu_store::cases::{MergeRequest, NewCase, NewMessage, NewTransfer, StatusChange};
use kefu_store::customers::{
    CustomFieldDefinition, NewContact, NewCustomer, NewTransaction, NewWinBackAttempt,
};
use kefu_store::timeline::NewTouchpoint;
use kefu_store::users::{NewTeam, NewUser};
use kefu_store::{Actor, Clock, FixedClock, Store, StoreError};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

/// The demo administrator's login, printed in the summary.
pub const ADMIN_EMAIL: &str = "admin@kefu.demo";
pub const DEMO_PASSWORD: &str = "kefu-demo-2026";

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// How many customers to create.
    #[arg(long, default_value_t = 300)]
    pub customers: usize,
    /// The generator's seed: the same seed gives the same people, cases and words.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Instead of loading the demo, write customer rows as CSV to FILE (for
    /// `kefu import customers`, e.g. the import benchmark).
    #[arg(long, value_name = "FILE")]
    pub write_csv: Option<PathBuf>,
    /// How many rows --write-csv writes.
    #[arg(long, default_value_t = 1_000_000, requires = "write_csv")]
    pub rows: u64,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            customers: 300,
            seed: 2026,
            write_csv: None,
            rows: 1_000_000,
        }
    }
}

/// `kefu demo --write-csv FILE`: writes sample rows for the importer and touches no
/// database (so it opens none).
pub fn write_csv(path: &std::path::Path, args: &DemoArgs) -> CliResult<String> {
    let started = std::time::Instant::now();
    write_sample_csv(path, args.rows, args.seed)?;
    Ok(format!(
        "wrote {} customer rows to {} in {:.1} s (seed {}); import them with `kefu import customers {}`",
        args.rows,
        path.display(),
        started.elapsed().as_secs_f64(),
        args.seed,
        path.display()
    ))
}

pub async fn load(store: &Store, args: &DemoArgs) -> CliResult<String> {
    if let Some(path) = &args.write_csv {
        return write_csv(path, args);
    }
    if store.user_by_email(ADMIN_EMAIL).await.is_ok() {
        return Ok(format!(
            "The demo dataset is already loaded ({ADMIN_EMAIL} exists), so nothing was added. \
             Log in as {ADMIN_EMAIL} with password {DEMO_PASSWORD}."
        ));
    }
    Demo::new(store, args).run().await
}

// ---------------------------------------------------------------------------------
// A tiny deterministic generator (xorshift64*), seeded through splitmix64.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        low + (self.next_u64() % (high - low) as u64) as i64
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

// ---------------------------------------------------------------------------------
// Words.

const ZH_SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "高", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
];
const ZH_GIVEN: &[&str] = &[
    "芳", "伟", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "华", "慧", "建华", "志强", "晓明", "婷婷", "子涵", "浩然", "欣怡", "宇轩",
    "嘉怡", "俊杰", "雨桐", "思远", "家豪", "美玲", "国强", "丽华",
];
const EN_FIRST: &[&str] = &[
    "James",
    "Emily",
    "Oliver",
    "Sophie",
    "Daniel",
    "Grace",
    "Michael",
    "Hannah",
    "David",
    "Olivia",
    "Thomas",
    "Charlotte",
    "Lucas",
    "Chloe",
    "Ethan",
    "Amelia",
    "Ryan",
    "Isabella",
    "Jack",
    "Mia",
    "Priya",
    "Kenji",
    "Carlos",
    "Fatima",
];
const EN_LAST: &[&str] = &[
    "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Clarke", "Walker", "Wright", "Green", "Hall",
    "Wood", "Harris", "Lewis", "Martin", "Thompson", "Chan", "Wong", "Lee", "Ng", "Cheung",
    "Patel", "Tanaka", "Garcia", "Khan",
];
const ZH_COMPANIES: &[(&str, &str, &str)] = &[
    ("深圳华讯科技有限公司", "huaxun-tech", "technology"),
    ("上海东方贸易有限公司", "dongfang-trade", "retail"),
    ("杭州绿源食品有限公司", "lvyuan-foods", "manufacturing"),
    ("广州恒通物流有限公司", "hengtong-logistics", "logistics"),
    ("北京智远教育科技有限公司", "zhiyuan-edu", "education"),
    ("成都天府医疗器械有限公司", "tianfu-medical", "healthcare"),
    ("苏州精工制造有限公司", "jinggong-mfg", "manufacturing"),
    ("南京金陵酒店管理有限公司", "jinling-hotels", "hospitality"),
    ("厦门海峡电子商务有限公司", "haixia-ecommerce", "retail"),
    (
        "武汉长江建材有限公司",
        "changjiang-materials",
        "manufacturing",
    ),
    ("青岛蓝海连锁超市", "lanhai-supermarkets", "retail"),
    ("西安古城文化传媒有限公司", "gucheng-media", "technology"),
];
const EN_COMPANIES: &[(&str, &str, &str)] = &[
    ("Northwind Traders Ltd", "northwind", "retail"),
    ("Harbour Logistics Co.", "harbour-logistics", "logistics"),
    ("Bluebird Retail Group", "bluebird-retail", "retail"),
    ("Summit Health Partners", "summit-health", "healthcare"),
    ("Evergreen Foods Inc.", "evergreen-foods", "manufacturing"),
    ("Pacific Crest Hotels", "pacific-crest", "hospitality"),
    ("Brightpath Education", "brightpath", "education"),
    ("Ironbridge Manufacturing", "ironbridge", "manufacturing"),
    ("Lumen Software Ltd", "lumen-software", "technology"),
    ("Kowloon Bay Trading", "kowloon-bay", "retail"),
];
const INDUSTRIES: &[&str] = &[
    "retail",
    "manufacturing",
    "logistics",
    "education",
    "healthcare",
    "hospitality",
    "technology",
];
const ZH_PRODUCTS: &[&str] = &[
    "智能门锁X2",
    "空气净化器Pro",
    "蓝牙耳机S3",
    "扫地机器人R7",
    "人体工学椅E5",
    "无线路由器AX3000",
];
const EN_PRODUCTS: &[&str] = &[
    "Smart Lock X2",
    "Air Purifier Pro",
    "Wireless Earbuds S3",
    "Robot Vacuum R7",
    "Ergonomic Chair E5",
    "AX3000 Router",
];
const ZH_CITIES: &[&str] = &[
    "深圳", "上海", "杭州", "广州", "北京", "成都", "苏州", "南京",
];
const ZH_NEEDS: &[&str] = &[
    "希望统一采购办公设备，控制成本",
    "需要稳定的售后服务和上门安装",
    "关注产品质量和保修期限",
    "想了解企业批量采购优惠",
    "需要开具增值税专用发票",
    "希望有专属客服对接",
];
const EN_NEEDS: &[&str] = &[
    "Wants predictable pricing for office equipment",
    "Needs on-site installation and fast repairs",
    "Cares most about build quality and warranty",
    "Looking for volume discounts",
    "Needs monthly consolidated invoices",
    "Would like a dedicated account manager",
];
const ZH_HOBBIES: &[&str] = &[
    "羽毛球",
    "茶艺",
    "摄影",
    "跑步",
    "书法",
    "钓鱼",
    "旅行",
    "烹饪",
];
const EN_HOBBIES: &[&str] = &[
    "cycling",
    "photography",
    "hiking",
    "cooking",
    "tennis",
    "board games",
    "travel",
];
const ZH_LOST_REASONS: &[&str] = &[
    "竞争对手报价低15%，客户转向对方采购",
    "对上次物流延迟和售后处理不满意",
    "公司搬迁到外地，不再需要本地服务",
    "预算被削减，暂停所有新增采购",
];
const EN_LOST_REASONS: &[&str] = &[
    "Switched to a competitor offering a lower price",
    "Unhappy with repeated delivery delays",
    "Company moved abroad; no longer needs local service",
    "Budget frozen for the rest of the year",
];

/// Placeholders filled in message templates.
struct Fill {
    name: String,
    product: &'static str,
    order: String,
    tracking: String,
    amount: String,
    city: &'static str,
    company: String,
    qty: u32,
    days: u32,
}

impl Fill {
    fn apply(&self, template: &str) -> String {
        template
            .replace("{name}", &self.name)
            .replace("{product}", self.product)
            .replace("{order}", &self.order)
            .replace("{tracking}", &self.tracking)
            .replace("{amount}", &self.amount)
            .replace("{city}", self.city)
            .replace("{company}", &self.company)
            .replace("{qty}", &self.qty.to_string())
            .replace("{days}", &self.days.to_string())
    }
}

/// A conversation: subject, the customer's first message, the internal note, the
/// agent's first answer, the customer's follow-up and the agent's closing answer.
struct Script {
    subject: &'static str,
    opening: &'static str,
    note: &'static str,
    answer: &'static str,
    follow_up: &'static str,
    closing: &'static str,
}

fn scripts(kind: CaseKind, chinese: bool) -> &'static [Script] {
    match (kind, chinese) {
        (CaseKind::Consultation, true) => &[
            Script {
                subject: "咨询：{product}是否支持企业批量采购？",
                opening: "您好，我们公司想采购约{qty}台{product}，请问有没有批量采购的价格？可以开增值税专用发票吗？交货周期大概多久？",
                note: "客户是中小企业采购，报价按企业价第二档。",
                answer: "{name}您好，感谢您的咨询！{qty}台以上可享受企业批量价，报价单已发送到您的邮箱；可开具增值税专用发票，现货一般3–5个工作日发货。",
                follow_up: "收到报价了，谢谢。请问可以分两批交货吗？",
                closing: "可以的，分批交货不收取额外费用，下单时备注即可。如有其他问题随时联系我们。",
            },
            Script {
                subject: "{product}和上一代有什么区别？",
                opening: "想问一下{product}和上一代相比主要升级了哪些地方？家里有老人，操作会不会很复杂？",
                note: "客户关注易用性，推荐长辈模式。",
                answer: "您好！新款主要升级了续航和降噪，并新增了「长辈模式」，大字体一键操作，老人用起来很方便。",
                follow_up: "听起来不错，有没有实体店可以先体验一下？",
                closing: "{city}的旗舰店有现场体验区，地址已通过短信发给您，欢迎周末过去试用。",
            },
        ],
        (CaseKind::Consultation, false) => &[
            Script {
                subject: "Question about volume pricing for {product}",
                opening: "Hi, we're looking to buy around {qty} units of {product} for our office. Do you offer volume pricing, and how long does delivery usually take?",
                note: "Small business buyer; quote tier 2 business pricing.",
                answer: "Hi {name}, thanks for reaching out! Orders of {qty}+ units qualify for business pricing — I've emailed you a quote. Delivery from stock is usually 3–5 working days.",
                follow_up: "Got the quote, thank you. Can we split the delivery into two shipments?",
                closing: "Yes, split deliveries are free of charge — just add a note when you place the order.",
            },
            Script {
                subject: "Does {product} work with our existing setup?",
                opening: "Hello, before we buy: does {product} work with Google Home and Apple Home? We have both in the office.",
                note: "Compatibility question; both supported since firmware 2.0.",
                answer: "Hi {name}, yes — {product} supports both Google Home and Apple Home out of the box (firmware 2.0 and later).",
                follow_up: "Great. Is there a trial period if it doesn't suit us?",
                closing: "There is a 30-day no-questions-asked return period. Enjoy!",
            },
        ],
        (CaseKind::TechnicalSupport, true) => &[
            Script {
                subject: "后台登录不了，一直提示密码错误",
                opening: "今天早上开始登录后台一直提示密码错误，我确定密码没有改过，试了好几次，现在账号好像被锁了。很著急，下午要出报表。",
                note: "已确认账号因多次登录失败被锁定，需要技术支持解锁并重置密码。",
                answer: "您好，已为您解锁账号并发送密码重置邮件，请在30分钟内点击邮件中的链接设置新密码。",
                follow_up: "重置成功了，可以登录了，谢谢！",
                closing: "不客气！建议开启两步验证，账号会更安全。",
            },
            Script {
                subject: "{product}连接Wi-Fi后频繁断线",
                opening: "上周买的{product}，连上公司Wi-Fi后每隔十几分钟就断一次，重启路由器也没用，影响正常使用。",
                note: "疑似1.2.3版本固件的已知问题，需技术支持确认。",
                answer: "您好，这是旧版固件的已知问题。请在「设置→系统→固件升级」中更新到1.2.5版本，升级后即可解决。",
                follow_up: "升级后用了两天，没有再断线了。",
                closing: "太好了！如再有问题随时联系我们。",
            },
        ],
        (CaseKind::TechnicalSupport, false) => &[
            Script {
                subject: "Password reset link not working",
                opening: "I requested a password reset three times, but the link in the email says it has expired as soon as I click it. I'm locked out of my account.",
                note: "Links expire at once: the customer's mail scanner pre-opens them. Needs tech support for a one-time code.",
                answer: "Hi {name}, your mail provider's link scanner was opening the reset link before you did. I've sent you a one-time code instead — enter it on the login page under 'Use a code'.",
                follow_up: "That worked, I'm back in. Thanks for the quick help!",
                closing: "Glad to hear it! Consider turning on two-factor authentication while you're there.",
            },
            Script {
                subject: "API returns 500 when exporting invoices",
                opening: "Since yesterday our integration gets HTTP 500 from the invoice export endpoint for any date range longer than a month. Shorter ranges work fine.",
                note: "Reproduced with a 40-day range; engineering says large exports time out. Workaround: one month per request.",
                answer: "Hi {name}, thanks for the detailed report. Engineering confirmed a timeout on large exports; a fix ships this week. Until then, please request one month at a time.",
                follow_up: "Paginating works for now. Please let us know when the fix is live.",
                closing: "The fix is live — exports of any range work again. Thanks for your patience.",
            },
        ],
        (CaseKind::Order, true) => &[
            Script {
                subject: "订单{order}能否修改收货地址？",
                opening: "我刚下的订单{order}，收货地址填错了，应该寄到{city}的公司地址，麻烦帮忙改一下，应该还没发货吧？",
                note: "仓库确认未出库，可改地址。",
                answer: "您好，订单{order}尚未出库，已为您将收货地址更新为{city}的新地址，预计{days}天内送达。",
                follow_up: "好的，谢谢！请问有物流单号了吗？",
                closing: "已发货，顺丰单号SF{tracking}，您可以在顺丰官网查询物流进度。",
            },
            Script {
                subject: "下单{qty}台{product}，需要开专票",
                opening: "你好，我们要订购{qty}台{product}，公司名称{company}，需要开增值税专用发票，请确认一下总价和到货时间。",
                note: "企业订单，已按合同价录入。",
                answer: "您好，订单已录入，总价{amount}，发票将随货寄出，预计{days}个工作日内送达。",
                follow_up: "款项已经转账，麻烦查收。",
                closing: "款项已确认到账，货物今天发出，顺丰单号SF{tracking}。",
            },
        ],
        (CaseKind::Order, false) => &[
            Script {
                subject: "Order {order} — add two more items?",
                opening: "Hi, I placed order {order} this morning. Could you add two more {product} to it before it ships? Happy to pay the difference.",
                note: "Warehouse has not picked it yet; edit allowed.",
                answer: "Hi {name}, done — order {order} now has the extra items, and I've sent a payment link for the difference.",
                follow_up: "Paid. When will it ship?",
                closing: "It shipped today with tracking number {tracking}; expect delivery within {days} days.",
            },
            Script {
                subject: "Bulk order for {qty} × {product}",
                opening: "We'd like to order {qty} units of {product} for our new branch. Please confirm the total and the earliest delivery date.",
                note: "Business order at contract price.",
                answer: "Hi {name}, your order is confirmed at {amount} in total; delivery within {days} working days.",
                follow_up: "Payment has been sent by bank transfer.",
                closing: "Payment received — your order ships today, tracking {tracking}.",
            },
        ],
        (CaseKind::Complaint, true) => &[
            Script {
                subject: "物流严重延迟，订单{order}十天还没到",
                opening: "订单{order}下单已经十天了，物流信息三天没有更新，客服电话一直打不通！如果这周还收不到我就要求全额退款并投诉到消协。",
                note: "物流商确认包裹在中转站滞留，已要求加急；客户情绪激动，建议补偿优惠券。",
                answer: "{name}您好，非常抱歉给您带来不便！我们已核实包裹在中转站滞留，已安排加急派送，明天送达；同时为您申请了50元无门槛优惠券作为补偿。",
                follow_up: "收到了，东西没问题。这次处理态度还可以，希望以后不要再这样。",
                closing: "再次向您致歉，我们已与物流商沟通改进，感谢您的理解与支持。",
            },
            Script {
                subject: "产品质量问题：{product}用了一周就坏了",
                opening: "买的{product}才用了一周就无法开机，这质量也太差了！要求换新并赔偿我的损失。",
                note: "同批次已有三起类似反馈，已通知质检部门。",
                answer: "您好，非常抱歉！已为您安排免费换新，快递明天上门取件，新机今天发出；另退还运费20元。",
                follow_up: "新的收到了，目前使用正常。",
                closing: "感谢您的反馈，质检部门已对该批次进行排查。祝您使用愉快！",
            },
        ],
        (CaseKind::Complaint, false) => &[
            Script {
                subject: "Charged twice for the same subscription",
                opening: "I've been billed twice this month for my subscription ({amount}). This is the second time it has happened and nobody answered my last email. I want a refund today.",
                note: "Duplicate charge confirmed: payment gateway retry. Refund approved by the supervisor.",
                answer: "Hi {name}, I'm very sorry — you're right, the payment was taken twice because of a gateway retry. The duplicate charge of {amount} has been refunded and should appear within 3–5 working days.",
                follow_up: "The refund showed up. Thanks for sorting it out.",
                closing: "Thank you for your patience, and apologies again for the trouble.",
            },
            Script {
                subject: "Parcel thrown over the gate, {product} damaged",
                opening: "The courier threw my parcel over the gate and the box was crushed. The {product} inside has a cracked casing. This is unacceptable.",
                note: "Photos received; courier incident logged. Replace and refund delivery.",
                answer: "Hi {name}, I'm so sorry. A replacement {product} ships today by a different courier, and your delivery fee has been refunded.",
                follow_up: "Replacement arrived in perfect condition.",
                closing: "Great to hear. We've raised the incident with the courier.",
            },
        ],
        (CaseKind::AfterSale, true) => &[
            Script {
                subject: "申请退款：订单{order}",
                opening: "订单{order}的{product}收到后发现和描述不符，颜色不对，想申请退货退款。",
                note: "在7天无理由退货期内，可直接退。",
                answer: "您好，已为您登记退货，请在7天内将商品寄回，仓库签收后1–3个工作日内原路退款。",
                follow_up: "已经寄回了，圆通单号YT{tracking}。",
                closing: "仓库已签收，退款{amount}已原路退回，请注意查收。",
            },
            Script {
                subject: "发票抬头开错了，需要重开",
                opening: "订单{order}的发票抬头开成了个人，我们需要公司抬头：{company}，税号稍后提供。",
                note: "需财务作废原发票后重开。",
                answer: "您好，原发票已作废，请提供税号，我们会在2个工作日内重新开具电子发票发到您的邮箱。",
                follow_up: "税号是91440300MA5{tracking}，谢谢。",
                closing: "新发票已开具并发送到您的邮箱，请查收。",
            },
        ],
        (CaseKind::AfterSale, false) => &[
            Script {
                subject: "Warranty repair for {product}",
                opening: "My {product} stopped charging. It's still under warranty (bought {days} months ago). How do I get it repaired?",
                note: "Within warranty; book a courier pick-up.",
                answer: "Hi {name}, sorry to hear that. I've opened a warranty repair — a courier will collect it tomorrow and repairs take about 5 working days.",
                follow_up: "The courier picked it up this morning.",
                closing: "Your repaired {product} is on its way back, tracking {tracking}.",
            },
            Script {
                subject: "Billing question: invoice doesn't match the quote",
                opening: "Our invoice for order {order} says {amount}, but the quote we accepted was 10% lower. Can you check?",
                note: "Discount missing on the invoice; finance to issue a credit note.",
                answer: "Hi {name}, you're right — the agreed discount was missing. Finance is issuing a credit note today.",
                follow_up: "Credit note received, thanks.",
                closing: "You're welcome — the corrected invoice is attached to your account.",
            },
        ],
        (CaseKind::Suggestion, true) => &[Script {
            subject: "建议：网店增加微信支付",
            opening: "你们的网店只支持支付宝和银行卡，建议增加微信支付，我们很多同事都用微信。",
            note: "已转交产品团队，列入下季度计划。",
            answer: "感谢您的宝贵建议！已转交产品团队评估，预计下季度上线微信支付。",
            follow_up: "好的，期待。",
            closing: "上线后我们会第一时间通知您。",
        }],
        (CaseKind::Suggestion, false) => &[Script {
            subject: "Suggestion: a dark mode for the app",
            opening: "Love the app, but please add a dark mode — using it at night is hard on the eyes.",
            note: "Added to the roadmap vote count.",
            answer: "Thanks for the suggestion! Dark mode is on our roadmap, and I've added your vote.",
            follow_up: "Thanks!",
            closing: "We'll let you know when it ships.",
        }],
    }
}

// ---------------------------------------------------------------------------------
// The plan: customers and cases, then events in time order.

struct CustomerPlan {
    name: String,
    chinese: bool,
    kind: CustomerKind,
    organization: Option<usize>,
    referrer: Option<usize>,
    lead_source: LeadSource,
    value_class: ValueClass,
    position: Position,
    supply_chain_role: Option<SupplyChainRole>,
    qualification: Qualification,
    communication_type: Option<CommunicationType>,
    needs: String,
    hobbies: String,
    notes: String,
    contacts: Vec<NewContact>,
    custom: Map<String, Value>,
    source: InformationSource,
    /// The user who recorded the customer.
    owner: usize,
}

struct CasePlan {
    customer: usize,
    kind: CaseKind,
    subject: String,
    opening: String,
    channel: Channel,
    team: usize,
    assignee: usize,
    priority: Option<Priority>,
    charging: Option<Charging>,
    service_mode: Option<ServiceMode>,
    /// Taken by an agent on the phone or face to face (else it arrived by itself).
    recorded_by_agent: bool,
}

enum Action {
    Customer(usize),
    Transition {
        customer: usize,
        to: LifecycleState,
        reason: String,
        actor: usize,
    },
    Transaction {
        customer: usize,
        amount_cents: i64,
        currency: &'static str,
        method: &'static str,
        description: String,
        actor: usize,
    },
    WinBack {
        customer: usize,
        channel: Channel,
        outcome: &'static str,
        note: String,
        actor: usize,
    },
    Touchpoint {
        customer: usize,
        kind: TimelineKind,
        channel: Channel,
        direction: Direction,
        content: ContentType,
        summary: String,
        actor: usize,
    },
    OpenCase(usize),
    Message {
        case: usize,
        kind: MessageKind,
        body: String,
        actor: usize,
    },
    Status {
        case: usize,
        to: CaseStatus,
        reason: String,
        actor: usize,
    },
    Transfer {
        case: usize,
        team: usize,
        assignee: usize,
        reason: String,
        actor: usize,
    },
    Merge {
        source: usize,
        into: usize,
        actor: usize,
    },
}

struct Event {
    at: i64,
    seq: usize,
    action: Action,
}

/// The demo's people: (email, name, role, team index).
const USERS: &[(&str, &str, Role, Option<usize>)] = &[
    (ADMIN_EMAIL, "陈志远 Chen Zhiyuan", Role::Admin, None),
    (
        "lin.hui@kefu.demo",
        "林慧 Lin Hui",
        Role::Supervisor,
        Some(2),
    ),
    (
        "grace.lau@kefu.demo",
        "刘嘉欣 Grace Lau",
        Role::Readonly,
        None,
    ),
    (
        "zhang.wei@kefu.demo",
        "张伟 Zhang Wei",
        Role::Agent,
        Some(0),
    ),
    ("emma.li@kefu.demo", "Emma Li 李雅", Role::Agent, Some(0)),
    ("wang.lei@kefu.demo", "王磊 Wang Lei", Role::Agent, Some(1)),
    (
        "david.chen@kefu.demo",
        "David Chen 陈大卫",
        Role::Agent,
        Some(1),
    ),
    ("liu.fang@kefu.demo", "刘芳 Liu Fang", Role::Agent, Some(2)),
    (
        "sophie.wong@kefu.demo",
        "Sophie Wong 黄淑仪",
        Role::Agent,
        Some(2),
    ),
    ("zhao.min@kefu.demo", "赵敏 Zhao Min", Role::Agent, Some(3)),
    (
        "james.ho@kefu.demo",
        "James Ho 何俊文",
        Role::Agent,
        Some(3),
    ),
];
const SUPERVISOR: usize = 1;

const TEAMS: &[(&str, &str)] = &[
    (
        "售前咨询 Pre-sales",
        "产品咨询、报价与下单 / Product questions, quotes and orders",
    ),
    (
        "技术支持 Technical support",
        "故障排查、账号与系统问题 / Troubleshooting, accounts and integrations",
    ),
    (
        "售后服务 After-sales",
        "退换货、维修、发票 / Returns, repairs and invoices",
    ),
    (
        "投诉处理 Complaints",
        "客户投诉的受理与跟进 / Handling and following up complaints",
    ),
];

/// Office hours for every team, a default SLA, a tighter one for serious complaints,
/// and an automation that makes serious complaints urgent — unless they exist already.
async fn service_levels(store: &Store, teams: &[kefu_store::users::Team]) -> CliResult<()> {
    use kefu_domain::automation::{Action as Do, Condition, Field, Operator, RuleSpec, Trigger};
    use kefu_domain::calendar::{CalendarSpec, Holiday, Weekday, WorkingHours};
    use kefu_domain::sla::SlaPolicySpec;
    let admin = Actor::cli();
    if !store.sla_policies().await?.is_empty() {
        return Ok(());
    }
    let weekdays = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
    ];
    let calendar = store
        .create_calendar(
            &admin,
            kefu_store::sla::NewCalendar {
                name: "客服中心 Service centre".into(),
                spec: CalendarSpec {
                    time_zone: "Asia/Shanghai".into(),
                    always_open: false,
                    hours: weekdays
                        .iter()
                        .flat_map(|d| {
                            [("09:00", "12:00"), ("13:00", "21:00")].map(|(start, end)| {
                                WorkingHours {
                                    weekday: *d,
                                    start: start.into(),
                                    end: end.into(),
                                }
                            })
                        })
                        .collect(),
                    holidays: (1..=7)
                        .map(|d| Holiday {
                            date: format!("2026-10-0{d}"),
                            name: "国庆节 National Day".into(),
                        })
                        .collect(),
                    extra_working_days: Vec::new(),
                },
            },
        )
        .await?;
    for team in teams {
        store
            .set_team_calendar(
                &admin,
                &team.id,
                kefu_store::sla::TeamCalendar {
                    calendar_id: Some(calendar.id.clone()),
                },
            )
            .await?;
    }
    for spec in [
        SlaPolicySpec {
            name: "严重投诉 Serious complaints".into(),
            rank: 10,
            case_kind: Some(CaseKind::Complaint),
            priority: None,
            severity: Some(kefu_domain::complaints::Severity::Serious),
            first_response_minutes: Some(30),
            next_response_minutes: Some(60),
            resolution_minutes: Some(8 * 60),
            warn_at_percent: Some(75),
            escalate_on_breach: Some(true),
            active: Some(true),
        },
        SlaPolicySpec {
            name: "标准 Standard".into(),
            rank: 100,
            case_kind: None,
            priority: None,
            severity: None,
            first_response_minutes: Some(4 * 60),
            next_response_minutes: Some(8 * 60),
            resolution_minutes: Some(3 * 11 * 60),
            warn_at_percent: Some(80),
            escalate_on_breach: Some(false),
            active: Some(true),
        },
    ] {
        store.create_sla_policy(&admin, spec).await?;
    }
    store
        .create_automation_rule(
            &admin,
            RuleSpec {
                name: "提到 12315 或律师的消息提醒主管 / Regulator or lawyer mentioned".into(),
                trigger: Trigger::CustomerMessage,
                conditions: vec![Condition {
                    field: Field::Message,
                    operator: Operator::Contains,
                    value: vec!["12315".into()],
                }],
                actions: vec![
                    Do::SetPriority {
                        priority: Priority::Urgent,
                    },
                    Do::NotifySupervisors {
                        message: "客户提到向 12315 投诉 / the customer mentions the regulator"
                            .into(),
                    },
                ],
                position: Some(10),
                active: Some(true),
            },
        )
        .await?;
    Ok(())
}

/// A complaint record for the demo's complaint case `index`, varied but reproducible.
fn complaint_record(index: usize, opening: &str) -> kefu_store::complaints::NewComplaint {
    use kefu_domain::complaints::*;
    let pick = |n: usize| index / 3 % n;
    kefu_store::complaints::NewComplaint {
        severity: if index.is_multiple_of(7) {
            Severity::Serious
        } else {
            Severity::General
        },
        behaviour: Behaviour::ALL[pick(Behaviour::ALL.len())],
        purpose: Purpose::ALL[index % Purpose::ALL.len()],
        cause: Cause::ALL[(index / 2) % Cause::ALL.len()],
        fault_side: None,
        fault_detail: if index.is_multiple_of(2) {
            Some(FaultDetail::ALL[index % 4])
        } else {
            None
        },
        dissatisfaction: if index.is_multiple_of(3) {
            Dissatisfaction::Process
        } else {
            Dissatisfaction::Outcome
        },
        needs: None,
        key_points: opening.chars().take(200).collect(),
        validity: None,
        validity_reason: None,
        product: None,
        reputation_risk: Some(index.is_multiple_of(11)),
        subject_user_id: None,
    }
}

/// Walks a complaint from wherever it stands to a satisfied close (which solves the
/// case), as the demo's supervisor-level actor where a review must be decided.
async fn close_complaint(
    store: &Store,
    agent: &Actor,
    case_id: &str,
    index: usize,
) -> Result<(), StoreError> {
    use kefu_domain::complaints::{CompensationOffer, ComplaintStage as S, StepInput};
    let chinese_note = |text: &str| Some(text.to_string());
    loop {
        let detail = store.complaint(case_id).await?;
        let from = detail.complaint.stage;
        let (actor, input) = match from {
            S::Recorded | S::InformationNeeded => (
                agent.clone(),
                StepInput {
                    stage: Some(S::AuthorityCheck),
                    ..Default::default()
                },
            ),
            S::AuthorityCheck => (
                agent.clone(),
                StepInput {
                    stage: Some(S::SolutionProposed),
                    proposal: chinese_note(
                        "致歉并换货，补偿运费 / apology, replacement and shipping refund",
                    ),
                    compensation: index.is_multiple_of(2).then_some(CompensationOffer {
                        amount_cents: 2_000 + (index as i64 % 5) * 1_000,
                        currency: None,
                        description: chinese_note("运费补偿 / shipping refund"),
                    }),
                    ..Default::default()
                },
            ),
            S::InternalReview => (
                Actor::cli(),
                StepInput {
                    stage: Some(S::ReviewProposed),
                    decision: chinese_note("主管决定全额退款并致歉 / full refund with an apology"),
                    ..Default::default()
                },
            ),
            S::SolutionProposed | S::ReviewProposed | S::ExternalReview => (
                agent.clone(),
                StepInput {
                    stage: Some(S::InAction),
                    decision: (from == S::ExternalReview).then(|| "维持 / upheld".to_string()),
                    ..Default::default()
                },
            ),
            S::InAction => (
                agent.clone(),
                StepInput {
                    stage: Some(S::FollowUp),
                    note: chinese_note("方案已执行 / solution carried out"),
                    ..Default::default()
                },
            ),
            S::FollowUp => (
                agent.clone(),
                StepInput {
                    stage: Some(S::Closed),
                    ..Default::default()
                },
            ),
            S::Closed | S::LegalAdvised => return Ok(()),
        };
        let input = StepInput {
            from: Some(from),
            ..input
        };
        store.complaint_step(&actor, case_id, input, None).await?;
    }
}

/// An agent of a team (two per team).
fn agent(team: usize, rng: &mut Rng) -> usize {
    3 + team * 2 + rng.below(2)
}

struct Demo<'a> {
    store: &'a Store,
    args: &'a DemoArgs,
    rng: Rng,
    customers: Vec<CustomerPlan>,
    cases: Vec<CasePlan>,
    events: Vec<Event>,
}

impl<'a> Demo<'a> {
    fn new(store: &'a Store, args: &'a DemoArgs) -> Demo<'a> {
        Demo {
            store,
            args,
            rng: Rng::new(args.seed),
            customers: Vec::new(),
            cases: Vec::new(),
            events: Vec::new(),
        }
    }

    fn push(&mut self, at: i64, action: Action) {
        let seq = self.events.len();
        self.events.push(Event { at, seq, action });
    }

    async fn run(mut self) -> CliResult<String> {
        let started = std::time::Instant::now();
        let now = kefu_store::SystemClock.now_ms();
        // Six months of history, ending an hour ago.
        let span = 180 * DAY;
        let start = now - span - HOUR;
        let clock = FixedClock::new(start - DAY);
        let store = self
            .store
            .clone()
            .with_clock(clock.clone() as Arc<dyn Clock>);

        // Teams and people (reusing teams of the same name, should they exist).
        let admin = Actor::cli();
        let existing = store.teams().await?;
        let mut teams = Vec::new();
        for (name, description) in TEAMS {
            let team = match existing.iter().find(|t| t.name == *name) {
                Some(team) => team.clone(),
                None => {
                    store
                        .create_team(
                            &admin,
                            NewTeam {
                                name: name.to_string(),
                                description: Some(description.to_string()),
                            },
                        )
                        .await?
                }
            };
            teams.push(team);
        }
        let mut users = Vec::new();
        for (email, name, role, team) in USERS {
            let user = match store.user_by_email(email).await {
                Ok(user) => user,
                Err(_) => {
                    store
                        .create_user(
                            &admin,
                            NewUser {
                                email: email.to_string(),
                                name: Some(name.to_string()),
                                role: *role,
                                password: Some(DEMO_PASSWORD.to_string()),
                                team_id: team.map(|t| teams[t].id.clone()),
                                locale: Some(if name.is_ascii() || email.starts_with("emma") {
                                    "en".to_string()
                                } else {
                                    "zh-CN".to_string()
                                }),
                            },
                        )
                        .await?
                }
            };
            users.push(user);
        }
        let actors: Vec<Actor> = users
            .iter()
            .map(|u| Actor {
                user_id: Some(u.key),
                label: u.email.clone(),
                authority: None,
            })
            .collect();
        let defined = store.custom_fields().await?;
        for definition in [
            CustomFieldDefinition {
                key: "industry".into(),
                label_en: "Industry".into(),
                label_zh: "行业".into(),
                field_type: CustomFieldType::Select,
                options: INDUSTRIES.iter().map(|s| s.to_string()).collect(),
                information_kind: InformationKind::Descriptive,
            },
            CustomFieldDefinition {
                key: "birthday".into(),
                label_en: "Birthday".into(),
                label_zh: "生日".into(),
                field_type: CustomFieldType::Date,
                options: Vec::new(),
                information_kind: InformationKind::Descriptive,
            },
        ] {
            if !defined.iter().any(|d| d.key == definition.key) {
                store.define_custom_field(&admin, definition).await?;
            }
        }
        let industry_ok = defined
            .iter()
            .find(|d| d.key == "industry")
            .is_none_or(|d| INDUSTRIES.iter().all(|i| d.options.iter().any(|o| o == i)));

        service_levels(&store, &teams).await?;
        self.plan(span, industry_ok);
        // Events in time order; the plan may run past the end, so squeeze it into the
        // six months (keeping the order).
        self.events.sort_by_key(|e| (e.at, e.seq));
        let last = self.events.last().map_or(1, |e| e.at.max(1));
        let squeeze = |at: i64| -> i64 {
            if last > span {
                (i128::from(at) * i128::from(span) / i128::from(last)) as i64
            } else {
                at
            }
        };
        clock.advance(DAY);
        let mut current = start;
        let mut customer_ids: Vec<Option<String>> = vec![None; self.customers.len()];
        let mut case_ids: HashMap<usize, String> = HashMap::new();
        let mut counts = Counts::default();
        let events = std::mem::take(&mut self.events);
        for event in events {
            let at = start + squeeze(event.at);
            if at > current {
                clock.advance(at - current);
                current = at;
            }
            self.apply(
                &store,
                &actors,
                &teams,
                &users,
                &mut customer_ids,
                &mut case_ids,
                &mut counts,
                event.action,
            )
            .await?;
        }

        // Deadlines that passed during the history are breaches now.
        store.sweep_sla().await?;
        store.sweep_promises().await?;
        // Routing profiles for the agents (capacity, skills, who is on duty now), then
        // the stress assessment that flags agents under strain to their supervisors.
        const SKILLS: [&[&str]; 4] = [
            &["english", "billing"],
            &["粤语", "售后维修"],
            &["english", "技术支持"],
            &["billing", "投诉处理"],
        ];
        for (i, user) in users.iter().enumerate() {
            if user.role != Role::Agent {
                continue;
            }
            store
                .set_agent_profile(
                    &admin,
                    &user.id,
                    kefu_store::routing::AgentProfileInput {
                        capacity: 15 + (i as i64 % 3) * 5,
                        skills: SKILLS[i % SKILLS.len()]
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                    },
                    None,
                )
                .await?;
            let availability = match i % 4 {
                0 | 1 => kefu_domain::routing::Availability::Available,
                2 => kefu_domain::routing::Availability::Busy,
                _ => kefu_domain::routing::Availability::Away,
            };
            store
                .set_availability(&admin, &user.id, availability)
                .await?;
        }
        store.sweep_stress().await?;
        let kb_entries = load_knowledge_base(&store, &admin).await?;
        // The reports' daily roll-ups, so the first report is already fast.
        store
            .refresh_reports(std::time::Duration::from_secs(600))
            .await?;
        let organisations = self
            .customers
            .iter()
            .filter(|c| c.kind == CustomerKind::Organization)
            .count();
        let timeline = self.store.timeline_count().await.unwrap_or(0);
        let first = kefu_domain::Timestamp(start);
        let last = kefu_domain::Timestamp(current);
        Ok(format!(
            "Loaded the demo dataset (seed {seed}) in {secs:.1} s: {teams} teams, {users} users, {customers} customers \
             ({organisations} organisations) in every lifecycle state with {transitions} recorded transitions, \
             {transactions} purchases and {winbacks} win-back attempts, {cases} cases of every kind with {messages} messages, \
             {transfers} transfers and {merges} merges, {complaints} complaint records, {touchpoints} visits, calls and letters — {timeline} timeline \
             entries from {first} to {last}; {kb_entries} published knowledge-base entries for the bot \
             (POST /api/v1/bot/messages). Log in as {ADMIN_EMAIL} with password {DEMO_PASSWORD}; the supervisor \
             (lin.hui@kefu.demo), the agents (zhang.wei@kefu.demo, emma.li@kefu.demo, …) and the read-only user \
             (grace.lau@kefu.demo) use the same password.",
            seed = self.args.seed,
            kb_entries = kb_entries,
            secs = started.elapsed().as_secs_f64(),
            teams = teams.len(),
            users = users.len(),
            customers = counts.customers,
            transitions = counts.transitions,
            transactions = counts.transactions,
            winbacks = counts.win_backs,
            cases = counts.cases,
            messages = counts.messages,
            transfers = counts.transfers,
            merges = counts.merges,
            complaints = counts.complaints,
            touchpoints = counts.touchpoints,
        ))
    }

    /// Decides who the customers are and what happens to them, as events at offsets
    /// from the start.
    fn plan(&mut self, span: i64, industry_ok: bool) {
        let n = self.args.customers.max(1);
        let arrival_window = span * 3 / 4;
        let step = (arrival_window / n as i64).max(MINUTE);
        let mut organisations: Vec<usize> = Vec::new();
        let mut referred: Vec<usize> = Vec::new();
        for i in 0..n {
            let rng = &mut self.rng;
            let chinese = rng.chance(65);
            let is_org = i % 8 == 1;
            let lead_source = if i < LeadSource::ALL.len() {
                LeadSource::ALL[(i * 5) % LeadSource::ALL.len()]
            } else {
                *rng.pick(LeadSource::ALL)
            };
            let created = 2 * DAY + i as i64 * step + rng.range(0, step);
            let mut custom = Map::new();
            let (name, contacts, organization, position, role) = if is_org {
                let (name, slug, industry) = if chinese {
                    let (n, s, ind) = ZH_COMPANIES[(i / 8) % ZH_COMPANIES.len()];
                    (n, s, ind)
                } else {
                    let (n, s, ind) = EN_COMPANIES[(i / 8) % EN_COMPANIES.len()];
                    (n, s, ind)
                };
                let round = i / 8 / ZH_COMPANIES.len().min(EN_COMPANIES.len());
                let name = if round == 0 {
                    name.to_string()
                } else if chinese {
                    format!("{name}（第{}分公司）", round + 1)
                } else {
                    format!("{name} (branch {})", round + 1)
                };
                if industry_ok {
                    custom.insert("industry".into(), json!(industry));
                }
                let contacts = vec![
                    NewContact {
                        channel: ContactChannel::Email,
                        value: format!("service{i}@{slug}.example.com"),
                        is_primary: true,
                    },
                    NewContact {
                        channel: ContactChannel::Phone,
                        value: if chinese {
                            format!("+86 755 8{:03} {:04}", i % 1000, 1000 + i)
                        } else {
                            format!("+852 3{:03} {:04}", i % 1000, 2000 + i)
                        },
                        is_primary: true,
                    },
                ];
                organisations.push(i);
                (
                    name,
                    contacts,
                    None,
                    Position::External,
                    Some(if rng.chance(70) {
                        SupplyChainRole::Intermediate
                    } else {
                        SupplyChainRole::PublicInterest
                    }),
                )
            } else {
                let (name, romanised) = if chinese {
                    let name = format!("{}{}", rng.pick(ZH_SURNAMES), rng.pick(ZH_GIVEN));
                    let romanised = kefu_domain::text::sort_key(&name)
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(".");
                    (name, romanised)
                } else {
                    let first = rng.pick(EN_FIRST);
                    let last = rng.pick(EN_LAST);
                    (
                        format!("{first} {last}"),
                        format!("{}.{}", first.to_lowercase(), last.to_lowercase()),
                    )
                };
                let mut contacts = Vec::new();
                let domain = ["example.com", "example.cn", "example.net", "example.org"][i % 4];
                if !chinese || rng.chance(60) {
                    contacts.push(NewContact {
                        channel: ContactChannel::Email,
                        value: format!("{romanised}{i}@{domain}"),
                        is_primary: true,
                    });
                }
                if chinese {
                    contacts.push(NewContact {
                        channel: ContactChannel::Phone,
                        value: format!(
                            "+86 1{}{} {:04} {:04}",
                            [3, 5, 8][i % 3],
                            i % 10,
                            (i * 7 + 1234) % 10_000,
                            i % 10_000
                        ),
                        is_primary: true,
                    });
                    if rng.chance(70) {
                        contacts.push(NewContact {
                            channel: ContactChannel::Wechat,
                            value: format!("wx_{}{i}", romanised.replace('.', "")),
                            is_primary: true,
                        });
                    }
                } else if rng.chance(70) {
                    contacts.push(NewContact {
                        channel: ContactChannel::Phone,
                        value: format!("+852 9{:03} {:04}", i % 1000, i % 10_000),
                        is_primary: true,
                    });
                    if rng.chance(30) {
                        contacts.push(NewContact {
                            channel: ContactChannel::Whatsapp,
                            value: format!("+8529{:03}{:04}", i % 1000, i % 10_000),
                            is_primary: true,
                        });
                    }
                }
                if rng.chance(25) {
                    custom.insert(
                        "birthday".into(),
                        json!(format!(
                            "{}-{:02}-{:02}",
                            rng.range(1960, 2004),
                            rng.range(1, 13),
                            rng.range(1, 29)
                        )),
                    );
                }
                let organization = if !organisations.is_empty() && rng.chance(45) {
                    Some(*rng.pick(&organisations))
                } else {
                    None
                };
                let position = if i % 23 == 5 {
                    Position::Internal
                } else {
                    Position::External
                };
                let role = match rng.below(10) {
                    0..=6 => Some(SupplyChainRole::Consumer),
                    7 => Some(SupplyChainRole::Intermediate),
                    _ => None,
                };
                (name, contacts, organization, position, role)
            };
            // Referral chains: a referred customer names someone who arrived earlier,
            // preferably someone who was referred too.
            let referrer =
                if matches!(lead_source, LeadSource::Referral | LeadSource::AgentHound) && i > 0 {
                    let pick = if !referred.is_empty() && rng.chance(50) {
                        *rng.pick(&referred)
                    } else {
                        rng.below(i)
                    };
                    referred.push(i);
                    Some(pick)
                } else {
                    None
                };
            let answer = |rng: &mut Rng| match rng.below(5) {
                0 => None,
                1 => Some(false),
                _ => Some(true),
            };
            let qualification = Qualification {
                need: answer(rng),
                ability_to_pay: answer(rng),
                authority: answer(rng),
            };
            let communication_type = if i < CommunicationType::ALL.len() {
                Some(CommunicationType::ALL[i])
            } else if rng.chance(55) {
                Some(*rng.pick(CommunicationType::ALL))
            } else {
                None
            };
            let (needs, hobbies) = if chinese {
                (
                    rng.pick(ZH_NEEDS).to_string(),
                    rng.pick(ZH_HOBBIES).to_string(),
                )
            } else {
                (
                    rng.pick(EN_NEEDS).to_string(),
                    rng.pick(EN_HOBBIES).to_string(),
                )
            };
            let notes = match (lead_source, chinese) {
                (LeadSource::Event, true) => "在深圳消费电子展上交换名片。".to_string(),
                (LeadSource::Event, false) => "Met at the Hong Kong Electronics Fair.".to_string(),
                (LeadSource::AgentHound, true) => "由代理人介绍，成交后按5%支付佣金。".to_string(),
                (LeadSource::AgentHound, false) => {
                    "Introduced by an agent; 5% commission on the first order.".to_string()
                }
                _ => String::new(),
            };
            let source = match lead_source {
                LeadSource::DataAnalysis => InformationSource::PurchasedList,
                LeadSource::WebSearch => InformationSource::PublicSource,
                LeadSource::AgentHound => InformationSource::Partner,
                LeadSource::Advertising => InformationSource::Registration,
                _ => InformationSource::Agent,
            };
            let value_class = if (is_org && rng.chance(50)) || rng.chance(10) {
                ValueClass::Key
            } else {
                ValueClass::Ordinary
            };
            let owner = agent(0, rng);
            self.customers.push(CustomerPlan {
                name,
                chinese,
                kind: if is_org {
                    CustomerKind::Organization
                } else {
                    CustomerKind::Person
                },
                organization,
                referrer,
                lead_source,
                value_class,
                position,
                supply_chain_role: role,
                qualification,
                communication_type,
                needs,
                hobbies,
                notes,
                contacts,
                custom,
                source,
                owner,
            });
            self.push(created, Action::Customer(i));
            self.plan_lifecycle(i, created);
            self.plan_touchpoints(i, created);
            self.plan_cases(i, created);
        }
    }

    /// potential → target → current, some lost (with a reason and win-back attempts),
    /// some won back. The first customers cover every state.
    fn plan_lifecycle(&mut self, i: usize, created: i64) {
        use LifecycleState::*;
        let chinese = self.customers[i].chinese;
        let rng = &mut self.rng;
        let path: &[LifecycleState] = match if i < 6 { i } else { rng.below(20) } {
            0 | 6..=9 => &[],
            1 | 10..=12 => &[Target],
            2 | 13..=17 => &[Target, Current],
            3 | 18 => &[Target, Current, Lost],
            4 => &[Current, Lost, Target, Current],
            _ => &[Target, Lost],
        };
        let mut at = created;
        let owner = self.customers[i].owner;
        let mut state = Potential;
        for to in path {
            at += rng.range(2 * DAY, 12 * DAY);
            let reason = match (state, *to, chinese) {
                (_, Target, true) if state == Lost => "挽回成功：客户同意重新试用".to_string(),
                (_, Target, false) if state == Lost => {
                    "Win-back: agreed to try us again".to_string()
                }
                (_, Target, true) => "初次沟通后确认有需求和预算，列为目标客户".to_string(),
                (_, Target, false) => {
                    "Qualified after the first call: clear need and budget".to_string()
                }
                (_, Current, true) => "首次下单成交".to_string(),
                (_, Current, false) => "Placed the first order".to_string(),
                (_, Lost, true) => rng.pick(ZH_LOST_REASONS).to_string(),
                (_, Lost, false) => rng.pick(EN_LOST_REASONS).to_string(),
                (_, Potential, _) => String::new(),
            };
            let actor = if *to == Lost { SUPERVISOR } else { owner };
            self.events.push(Event {
                at,
                seq: self.events.len(),
                action: Action::Transition {
                    customer: i,
                    to: *to,
                    reason,
                    actor,
                },
            });
            if *to == Current {
                for _ in 0..rng.range(1, 5) {
                    at += rng.range(HOUR, 9 * DAY);
                    let (currency, description, method) = if chinese {
                        (
                            "CNY",
                            format!("{} × {}", rng.pick(ZH_PRODUCTS), rng.range(1, 20)),
                            *rng.pick(&["wechat_pay", "alipay", "bank_transfer", "store"]),
                        )
                    } else {
                        (
                            "USD",
                            format!("{} × {}", rng.pick(EN_PRODUCTS), rng.range(1, 20)),
                            *rng.pick(&["card", "bank_transfer", "online", "store"]),
                        )
                    };
                    let amount_cents = rng.range(199, 8_000) * 100 + [0, 50, 99][rng.below(3)];
                    self.events.push(Event {
                        at,
                        seq: self.events.len(),
                        action: Action::Transaction {
                            customer: i,
                            amount_cents,
                            currency,
                            method,
                            description,
                            actor: owner,
                        },
                    });
                }
            }
            if *to == Lost {
                for attempt in 0..rng.range(1, 4) {
                    at += rng.range(DAY, 10 * DAY);
                    let (channel, outcome, note) = match (attempt, chinese) {
                        (0, true) => (Channel::Phone, "no_answer", "电话回访，无人接听。"),
                        (0, false) => (Channel::Phone, "no_answer", "Called; no answer."),
                        (1, true) => (
                            Channel::Email,
                            "reached",
                            "发送专属优惠和新品介绍邮件，客户已读。",
                        ),
                        (1, false) => (
                            Channel::Email,
                            "reached",
                            "Sent a personal offer and the new catalogue; opened.",
                        ),
                        (_, true) => (
                            Channel::FaceToFace,
                            "interested",
                            "上门拜访，客户对新的服务方案感兴趣，约下月再谈。",
                        ),
                        (_, false) => (
                            Channel::FaceToFace,
                            "interested",
                            "Visited in person; interested in the new service plan, follow up next month.",
                        ),
                    };
                    self.events.push(Event {
                        at,
                        seq: self.events.len(),
                        action: Action::WinBack {
                            customer: i,
                            channel,
                            outcome,
                            note: note.to_string(),
                            actor: SUPERVISOR,
                        },
                    });
                }
            }
            state = *to;
        }
    }

    /// Hand-recorded touchpoints: visits, calls, letters and notes.
    fn plan_touchpoints(&mut self, i: usize, created: i64) {
        let chinese = self.customers[i].chinese;
        let is_org = self.customers[i].kind == CustomerKind::Organization;
        let name = self.customers[i].name.clone();
        let count = if i < 4 { 1 } else { self.rng.below(3) };
        for k in 0..count {
            let rng = &mut self.rng;
            let at = created + rng.range(HOUR, 40 * DAY);
            let which = if i < 4 { i } else { rng.below(4) };
            let (kind, channel, direction, content, summary) = match (which, chinese) {
                (0, true) => (
                    TimelineKind::Visit,
                    Channel::FaceToFace,
                    Direction::CompanyInitiated,
                    ContentType::Information,
                    if is_org {
                        format!("上门拜访{name}，演示新品并了解下季度采购计划")
                    } else {
                        format!("{name}到门店体验产品，现场讲解使用方法")
                    },
                ),
                (0, false) => (
                    TimelineKind::Visit,
                    Channel::FaceToFace,
                    Direction::CompanyInitiated,
                    ContentType::Information,
                    if is_org {
                        format!(
                            "Visited {name} to demo the new product line and hear next quarter's plans"
                        )
                    } else {
                        format!("{name} came to the showroom; walked through the setup")
                    },
                ),
                (1, true) => (
                    TimelineKind::Call,
                    Channel::Phone,
                    Direction::CompanyInitiated,
                    ContentType::Emotion,
                    "电话回访：了解产品使用情况，客户表示满意".to_string(),
                ),
                (1, false) => (
                    TimelineKind::Call,
                    Channel::Phone,
                    Direction::CompanyInitiated,
                    ContentType::Emotion,
                    "Follow-up call: the customer is happy with the setup".to_string(),
                ),
                (2, true) => (
                    TimelineKind::Letter,
                    Channel::Letter,
                    Direction::CompanyInitiated,
                    ContentType::Policy,
                    "寄送新年贺卡、产品目录及新版售后服务政策".to_string(),
                ),
                (2, false) => (
                    TimelineKind::Letter,
                    Channel::Letter,
                    Direction::CompanyInitiated,
                    ContentType::Policy,
                    "Posted the annual catalogue, a thank-you card and the new service policy"
                        .to_string(),
                ),
                (_, true) => (
                    TimelineKind::Call,
                    Channel::Phone,
                    Direction::CustomerInitiated,
                    ContentType::Opinion,
                    "客户来电反馈：希望增加晚间服务时段".to_string(),
                ),
                (_, false) => (
                    TimelineKind::Call,
                    Channel::Phone,
                    Direction::CustomerInitiated,
                    ContentType::Opinion,
                    "Customer called: would like evening support hours".to_string(),
                ),
            };
            let actor = agent(if k == 0 { 0 } else { 2 }, rng);
            self.push(
                at,
                Action::Touchpoint {
                    customer: i,
                    kind,
                    channel,
                    direction,
                    content,
                    summary,
                    actor,
                },
            );
        }
    }

    /// Cases: of every kind (the first six cover them all), answered, transferred,
    /// left open or solved and closed; now and then a duplicate that is merged.
    fn plan_cases(&mut self, i: usize, created: i64) {
        let count = if i < 6 {
            1
        } else {
            [0, 1, 1, 1, 2][self.rng.below(5)]
        };
        for _ in 0..count {
            let kind = if self.cases.len() < CaseKind::ALL.len() {
                CaseKind::ALL[self.cases.len()]
            } else {
                *self.rng.pick(&[
                    CaseKind::Consultation,
                    CaseKind::Consultation,
                    CaseKind::TechnicalSupport,
                    CaseKind::TechnicalSupport,
                    CaseKind::Order,
                    CaseKind::Order,
                    CaseKind::Complaint,
                    CaseKind::AfterSale,
                    CaseKind::AfterSale,
                    CaseKind::Suggestion,
                ])
            };
            let at = created + self.rng.range(HOUR, 50 * DAY);
            self.plan_case(i, kind, at);
        }
    }

    fn plan_case(&mut self, customer: usize, kind: CaseKind, at: i64) {
        let chinese = self.customers[customer].chinese;
        let rng = &mut self.rng;
        let script = rng.pick(scripts(kind, chinese));
        let display_name = {
            let name = &self.customers[customer].name;
            if chinese {
                name.clone()
            } else {
                name.split_whitespace().next().unwrap_or(name).to_string()
            }
        };
        let fill = Fill {
            name: display_name,
            product: rng.pick::<&str>(if chinese { ZH_PRODUCTS } else { EN_PRODUCTS }),
            order: format!(
                "{}{:06}",
                if chinese { "DD" } else { "SO-" },
                rng.range(100_000, 999_999)
            ),
            tracking: format!("{:012}", rng.next_u64() % 1_000_000_000_000),
            amount: if chinese {
                format!("¥{}.00", rng.range(99, 20_000))
            } else {
                format!("${}.{:02}", rng.range(9, 2_000), rng.below(100))
            },
            city: rng.pick::<&str>(ZH_CITIES),
            company: self.customers[customer]
                .organization
                .map(|o| self.customers[o].name.clone())
                .unwrap_or_else(|| {
                    if chinese {
                        "深圳华讯科技有限公司".into()
                    } else {
                        "Northwind Traders Ltd".into()
                    }
                }),
            qty: [5, 10, 20, 50][rng.below(4)],
            days: [2, 3, 5, 7][rng.below(4)],
        };
        // Where a case starts, and where it may be transferred to.
        let (first_team, transfer_to) = match kind {
            CaseKind::Consultation | CaseKind::Order => (0, None),
            CaseKind::TechnicalSupport => {
                if rng.chance(60) {
                    (0, Some(1))
                } else {
                    (1, None)
                }
            }
            CaseKind::Complaint => {
                if rng.chance(60) {
                    (2, Some(3))
                } else {
                    (3, None)
                }
            }
            CaseKind::AfterSale | CaseKind::Suggestion => (2, None),
        };
        let channel = if chinese {
            *rng.pick(&[
                Channel::Phone,
                Channel::Im,
                Channel::LiveChat,
                Channel::Email,
                Channel::Phone,
                Channel::FaceToFace,
            ])
        } else {
            *rng.pick(&[
                Channel::Email,
                Channel::Email,
                Channel::LiveChat,
                Channel::Phone,
                Channel::Web,
            ])
        };
        let assignee = agent(first_team, rng);
        let index = self.cases.len();
        self.cases.push(CasePlan {
            customer,
            kind,
            subject: fill.apply(script.subject),
            opening: fill.apply(script.opening),
            channel,
            team: first_team,
            assignee,
            priority: match kind {
                CaseKind::Complaint if rng.chance(30) => Some(Priority::Urgent),
                CaseKind::Suggestion => Some(Priority::Low),
                _ if rng.chance(10) => Some(Priority::High),
                _ => None,
            },
            charging: (kind == CaseKind::AfterSale && rng.chance(30)).then_some(Charging::Paid),
            service_mode: match (kind, rng.below(4)) {
                (CaseKind::AfterSale | CaseKind::TechnicalSupport, 0) => {
                    Some(ServiceMode::Itinerant)
                }
                (CaseKind::AfterSale | CaseKind::TechnicalSupport, 1) => {
                    Some(ServiceMode::FixedPoint)
                }
                _ => None,
            },
            recorded_by_agent: matches!(channel, Channel::Phone | Channel::FaceToFace),
        });
        self.push(at, Action::OpenCase(index));
        let rng = &mut self.rng;
        // How far the case gets: 0 = still new, 1 = answered (open), 2 = waiting on the
        // customer, 3 = on hold, 4 = solved, 5 = closed.
        // The first six cases (one of each kind) end in every state, closed to new.
        let outcome = match (index, rng.below(20)) {
            (0..=5, _) => 5 - index,
            (_, 0) => 0,
            (_, 1 | 2) => 1,
            (_, 3 | 4) => 2,
            (_, 5) => 3,
            (_, 6..=10) => 4,
            _ => 5,
        };
        let gap = |rng: &mut Rng| rng.range(20 * MINUTE, 20 * HOUR);
        let mut t = at;
        let mut owner = assignee;
        // A duplicate now and then: the customer writes again about the same thing, and
        // an agent merges it into the first case.
        if index == 6 || rng.chance(6) {
            let duplicate = self.cases.len();
            let subject = if chinese {
                format!("回复：{}", self.cases[index].subject)
            } else {
                format!("Re: {}", self.cases[index].subject)
            };
            let opening = if chinese {
                "请问我上午提交的问题有人处理吗？".to_string()
            } else {
                "Just following up on my message from this morning — is anyone looking at this?"
                    .to_string()
            };
            self.cases.push(CasePlan {
                customer,
                kind,
                subject,
                opening,
                channel: Channel::Email,
                team: first_team,
                assignee,
                priority: None,
                charging: None,
                service_mode: None,
                recorded_by_agent: false,
            });
            t += self.rng.range(5 * MINUTE, 15 * MINUTE);
            self.push(t, Action::OpenCase(duplicate));
            t += self.rng.range(5 * MINUTE, 15 * MINUTE);
            self.push(
                t,
                Action::Merge {
                    source: duplicate,
                    into: index,
                    actor: assignee,
                },
            );
        }
        if outcome == 0 {
            return;
        }
        let rng = &mut self.rng;
        if let Some(team) = transfer_to {
            t += gap(rng);
            self.push(
                t,
                Action::Message {
                    case: index,
                    kind: MessageKind::InternalNote,
                    body: fill.apply(script.note),
                    actor: owner,
                },
            );
            let rng = &mut self.rng;
            let to = agent(team, rng);
            let reason = match (team, chinese) {
                (1, true) => "需要技术人员排查，转技术支持",
                (1, false) => "Needs an engineer — handing over to technical support",
                (_, true) => "客户要求投诉处理，转投诉处理组跟进",
                (_, false) => "Customer asked to file a complaint; passing to the complaints team",
            };
            t += rng.range(5 * MINUTE, 2 * HOUR);
            self.push(
                t,
                Action::Transfer {
                    case: index,
                    team,
                    assignee: to,
                    reason: reason.to_string(),
                    actor: owner,
                },
            );
            owner = to;
        } else if self.rng.chance(40) {
            t += gap(&mut self.rng);
            self.push(
                t,
                Action::Message {
                    case: index,
                    kind: MessageKind::InternalNote,
                    body: fill.apply(script.note),
                    actor: owner,
                },
            );
        }
        t += gap(&mut self.rng);
        self.push(
            t,
            Action::Message {
                case: index,
                kind: MessageKind::Outbound,
                body: fill.apply(script.answer),
                actor: owner,
            },
        );
        match outcome {
            1 => {}
            2 => {
                t += gap(&mut self.rng);
                self.push(
                    t,
                    Action::Status {
                        case: index,
                        to: CaseStatus::Pending,
                        reason: if chinese {
                            "等待客户确认"
                        } else {
                            "Waiting for the customer to confirm"
                        }
                        .into(),
                        actor: owner,
                    },
                );
            }
            3 => {
                t += gap(&mut self.rng);
                self.push(
                    t,
                    Action::Status {
                        case: index,
                        to: CaseStatus::OnHold,
                        reason: if chinese {
                            "等待物流商／工程部回复"
                        } else {
                            "Waiting on the carrier / engineering"
                        }
                        .into(),
                        actor: owner,
                    },
                );
            }
            _ => {
                t += self.rng.range(2 * HOUR, 2 * DAY);
                self.push(
                    t,
                    Action::Message {
                        case: index,
                        kind: MessageKind::Inbound,
                        body: fill.apply(script.follow_up),
                        actor: owner,
                    },
                );
                t += gap(&mut self.rng);
                self.push(
                    t,
                    Action::Message {
                        case: index,
                        kind: MessageKind::Outbound,
                        body: fill.apply(script.closing),
                        actor: owner,
                    },
                );
                t += self.rng.range(10 * MINUTE, 4 * HOUR);
                self.push(
                    t,
                    Action::Status {
                        case: index,
                        to: CaseStatus::Solved,
                        reason: if chinese {
                            "问题已解决"
                        } else {
                            "Resolved"
                        }
                        .into(),
                        actor: owner,
                    },
                );
                if outcome == 5 {
                    t += self.rng.range(2 * DAY, 6 * DAY);
                    self.push(
                        t,
                        Action::Status {
                            case: index,
                            to: CaseStatus::Closed,
                            reason: if chinese {
                                "客户确认，三天无新回复自动关闭"
                            } else {
                                "Confirmed by the customer; closed after three quiet days"
                            }
                            .into(),
                            actor: owner,
                        },
                    );
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        store: &Store,
        actors: &[Actor],
        teams: &[kefu_store::users::Team],
        users: &[kefu_store::users::User],
        customer_ids: &mut [Option<String>],
        case_ids: &mut HashMap<usize, String>,
        counts: &mut Counts,
        action: Action,
    ) -> CliResult<()> {
        let customer_id = |index: usize| -> CliResult<String> {
            customer_ids
                .get(index)
                .cloned()
                .flatten()
                .ok_or_else(|| CliError(format!("demo: customer {index} was not created")))
        };
        let case_id = |index: usize| -> CliResult<String> {
            case_ids
                .get(&index)
                .cloned()
                .ok_or_else(|| CliError(format!("demo: case {index} was not created")))
        };
        let context = |what: &str, error: StoreError| CliError(format!("demo: {what}: {error}"));
        match action {
            Action::Customer(index) => {
                let plan = &self.customers[index];
                let input = NewCustomer {
                    name: plan.name.clone(),
                    kind: Some(plan.kind),
                    organization_id: plan.organization.map(&customer_id).transpose()?,
                    value_class: Some(plan.value_class),
                    position: Some(plan.position),
                    supply_chain_role: plan.supply_chain_role,
                    lifecycle: None,
                    lead_source: Some(plan.lead_source),
                    referrer_id: plan.referrer.map(&customer_id).transpose()?,
                    qualification: Some(plan.qualification),
                    communication_type: plan.communication_type,
                    language: Some(if plan.chinese { "zh-CN" } else { "en" }.into()),
                    needs: Some(plan.needs.clone()),
                    hobbies: Some(plan.hobbies.clone()),
                    notes: Some(plan.notes.clone()),
                    contacts: Some(plan.contacts.clone()),
                    custom_fields: (!plan.custom.is_empty()).then(|| plan.custom.clone()),
                    source: Some(plan.source),
                };
                let actor = &actors[plan.owner];
                let created = match store.create_customer(actor, input.clone()).await {
                    Ok(created) => created,
                    // A contact taken by data already in this database: keep the
                    // customer without it.
                    Err(StoreError::Conflict {
                        code: "duplicate_contact",
                        ..
                    }) => store
                        .create_customer(
                            actor,
                            NewCustomer {
                                contacts: None,
                                ..input
                            },
                        )
                        .await
                        .map_err(|e| context("creating a customer", e))?,
                    Err(e) => return Err(context("creating a customer", e)),
                };
                customer_ids[index] = Some(created.id);
                counts.customers += 1;
            }
            Action::Transition {
                customer,
                to,
                reason,
                actor,
            } => {
                store
                    .transition_customer(&actors[actor], &customer_id(customer)?, to, &reason, None)
                    .await
                    .map_err(|e| context("moving a customer along the lifecycle", e))?;
                counts.transitions += 1;
            }
            Action::Transaction {
                customer,
                amount_cents,
                currency,
                method,
                description,
                actor,
            } => {
                store
                    .add_transaction(
                        &actors[actor],
                        &customer_id(customer)?,
                        NewTransaction {
                            occurred_at: None,
                            method: method.into(),
                            amount_cents,
                            currency: Some(currency.into()),
                            description: Some(description),
                        },
                    )
                    .await
                    .map_err(|e| context("recording a purchase", e))?;
                counts.transactions += 1;
            }
            Action::WinBack {
                customer,
                channel,
                outcome,
                note,
                actor,
            } => {
                store
                    .add_win_back_attempt(
                        &actors[actor],
                        &customer_id(customer)?,
                        NewWinBackAttempt {
                            occurred_at: None,
                            channel,
                            outcome: outcome.into(),
                            note: Some(note),
                        },
                    )
                    .await
                    .map_err(|e| context("recording a win-back attempt", e))?;
                counts.win_backs += 1;
            }
            Action::Touchpoint {
                customer,
                kind,
                channel,
                direction,
                content,
                summary,
                actor,
            } => {
                store
                    .record_touchpoint(
                        &actors[actor],
                        &customer_id(customer)?,
                        NewTouchpoint {
                            kind,
                            channel,
                            direction,
                            interaction_type: None,
                            content_type: Some(content),
                            summary,
                            occurred_at: None,
                            case_id: None,
                            data: None,
                        },
                    )
                    .await
                    .map_err(|e| context("recording a touchpoint", e))?;
                counts.touchpoints += 1;
            }
            Action::OpenCase(index) => {
                let plan = &self.cases[index];
                let actor = if plan.recorded_by_agent {
                    actors[plan.assignee].clone()
                } else {
                    Actor::system()
                };
                let case = store
                    .create_case(
                        &actor,
                        NewCase {
                            customer_id: customer_id(plan.customer)?,
                            kind: plan.kind,
                            subject: plan.subject.clone(),
                            body: plan.opening.clone(),
                            message_kind: Some(MessageKind::Inbound),
                            channel: Some(plan.channel),
                            priority: plan.priority,
                            service_stage: None,
                            technical: None,
                            charging: plan.charging,
                            service_mode: plan.service_mode,
                            recurrence: None,
                            team_id: Some(teams[plan.team].id.clone()),
                            assignee_id: Some(users[plan.assignee].id.clone()),
                            content_type: None,
                        },
                    )
                    .await
                    .map_err(|e| context("opening a case", e))?;
                if plan.kind == CaseKind::Complaint {
                    let mut record = complaint_record(index, &plan.opening);
                    // One complaint in five names the agent who served the customer.
                    let named = index.is_multiple_of(5);
                    if named {
                        record.subject_user_id = Some(users[plan.assignee].id.clone());
                    }
                    store
                        .record_complaint(&actor, &case.id, record)
                        .await
                        .map_err(|e| context("recording a complaint", e))?;
                    counts.complaints += 1;
                    // Every complaint gets a promise (承诺) of a call back.
                    store
                        .add_promise(
                            &actors[plan.assignee],
                            &case.id,
                            kefu_store::promises::NewPromise {
                                description: "两个工作日内回电告知处理结果 / a call back with the outcome within two working days".into(),
                                due_at: kefu_domain::Timestamp(store.now_ms() + 2 * 86_400_000),
                                owner_id: None,
                            },
                        )
                        .await
                        .map_err(|e| context("making a promise", e))?;
                    // Half the named agents appeal (申诉); a supervisor decides some.
                    if named && index.is_multiple_of(2) {
                        let appeal = store
                            .file_appeal(
                                &actors[plan.assignee],
                                &case.id,
                                kefu_store::complaints::NewAppeal {
                                    statement: "客户要求的退款超出规定，我已按流程解释 / the refund asked for was outside policy, which I explained".into(),
                                },
                            )
                            .await
                            .map_err(|e| context("filing an appeal", e))?;
                        if index % 4 != 0 {
                            store
                                .decide_appeal(
                                    &Actor::cli(),
                                    &appeal.id,
                                    kefu_store::complaints::AppealDecision {
                                        status: if index % 3 == 0 {
                                            kefu_domain::complaints::AppealStatus::Upheld
                                        } else {
                                            kefu_domain::complaints::AppealStatus::Rejected
                                        },
                                        reason:
                                            "已核对通话录音 / checked against the call recording"
                                                .into(),
                                    },
                                )
                                .await
                                .map_err(|e| context("deciding an appeal", e))?;
                        }
                    }
                }
                case_ids.insert(index, case.id);
                counts.cases += 1;
                counts.messages += 1;
            }
            Action::Message {
                case,
                kind,
                body,
                actor,
            } => {
                let actor = if kind == MessageKind::Inbound {
                    Actor::system()
                } else {
                    actors[actor].clone()
                };
                store
                    .add_message(
                        &actor,
                        &case_id(case)?,
                        NewMessage {
                            kind,
                            body,
                            channel: None,
                            content_type: None,
                        },
                    )
                    .await
                    .map_err(|e| context("adding a message", e))?;
                counts.messages += 1;
            }
            Action::Status {
                case,
                to,
                reason,
                actor,
            } => {
                let id = case_id(case)?;
                // A complaint is solved by walking its flow to a satisfied close.
                if to == CaseStatus::Solved && self.cases[case].kind == CaseKind::Complaint {
                    close_complaint(store, &actors[actor], &id, case)
                        .await
                        .map_err(|e| context("closing a complaint", e))?;
                    // Most call-back promises were kept; the rest show up as overdue.
                    if case % 4 != 0 {
                        for promise in store
                            .case_promises(&id)
                            .await
                            .map_err(|e| context("reading promises", e))?
                        {
                            if promise.status == kefu_domain::complaints::PromiseStatus::Open {
                                store
                                    .settle_promise(
                                        &actors[actor],
                                        &promise.id,
                                        kefu_store::promises::PromiseUpdate {
                                            status: kefu_domain::complaints::PromiseStatus::Kept,
                                            note: Some("已回电 / called back".into()),
                                        },
                                        None,
                                    )
                                    .await
                                    .map_err(|e| context("keeping a promise", e))?;
                            }
                        }
                    }
                }
                let current = store
                    .case(&id)
                    .await
                    .map_err(|e| context("reading a case", e))?;
                if current.status != to {
                    store
                        .change_case_status(
                            &actors[actor],
                            &id,
                            StatusChange {
                                status: to,
                                reason: Some(reason),
                            },
                            None,
                        )
                        .await
                        .map_err(|e| context("changing a case's status", e))?;
                }
                // Two in three customers answer the satisfaction request.
                if to == CaseStatus::Solved && case % 3 != 0 {
                    let score = [5, 4, 5, 3, 4, 2, 5, 1, 4, 5][case % 10];
                    let reason = match score {
                        1 | 2 => Some("等了太久才有人处理 / waited too long".to_string()),
                        3 => Some(
                            "问题解决了，但过程有点繁琐 / solved, but it took effort".to_string(),
                        ),
                        _ => None,
                    };
                    // Already answered (a case solved twice) is fine: keep the first answer.
                    match store
                        .record_satisfaction(
                            &actors[actor],
                            &id,
                            kefu_store::satisfaction::SatisfactionAnswer { score, reason },
                        )
                        .await
                    {
                        Ok(_) | Err(StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(context("recording satisfaction", e)),
                    }
                }
            }
            Action::Transfer {
                case,
                team,
                assignee,
                reason,
                actor,
            } => {
                store
                    .transfer_case(
                        &actors[actor],
                        &case_id(case)?,
                        NewTransfer {
                            team_id: Some(teams[team].id.clone()),
                            assignee_id: Some(users[assignee].id.clone()),
                            reason,
                        },
                        None,
                    )
                    .await
                    .map_err(|e| context("transferring a case", e))?;
                counts.transfers += 1;
            }
            Action::Merge {
                source,
                into,
                actor,
            } => {
                store
                    .merge_case(
                        &actors[actor],
                        &case_id(source)?,
                        MergeRequest {
                            into_id: case_id(into)?,
                        },
                    )
                    .await
                    .map_err(|e| context("merging a case", e))?;
                counts.merges += 1;
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Counts {
    customers: usize,
    transitions: usize,
    transactions: usize,
    win_backs: usize,
    touchpoints: usize,
    cases: usize,
    messages: usize,
    transfers: usize,
    merges: usize,
    complaints: usize,
}

// ---------------------------------------------------------------------------------
// Sample CSV for imports.

/// The header `write_sample_csv` writes (a subset of what `kefu import` reads).
pub const SAMPLE_CSV_COLUMNS: &[&str] = &[
    "name",
    "kind",
    "email",
    "phone",
    "wechat",
    "value_class",
    "position",
    "supply_chain_role",
    "lifecycle",
    "lead_source",
    "language",
    "needs",
    "hobbies",
    "notes",
];

/// Writes `count` realistic customer rows (Chinese and English names, unique emails
/// and phone numbers, every lifecycle state and lead source) as CSV, streaming.
pub fn write_sample_csv(path: &std::path::Path, count: u64, seed: u64) -> CliResult<()> {
    let cannot =
        |e: &dyn std::fmt::Display| CliError(format!("cannot write {}: {e}", path.display()));
    let file = std::fs::File::create(path).map_err(|e| cannot(&e))?;
    let mut out = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
    out.write_record(SAMPLE_CSV_COLUMNS)
        .map_err(|e| cannot(&e))?;
    let mut rng = Rng::new(seed);
    // Phone numbers: n → n × 7919 + offset (mod 10^10) is one-to-one, so numbers are
    // unique yet look random.
    let offset = rng.next_u64() % 10_000_000_000;
    let lifecycles = LifecycleState::ALL;
    let mut record: Vec<String> = Vec::with_capacity(SAMPLE_CSV_COLUMNS.len());
    for n in 0..count {
        record.clear();
        let chinese = rng.chance(65);
        let organisation = n % 12 == 7;
        let (name, romanised) = if organisation {
            if chinese {
                let (company, slug, _) = ZH_COMPANIES[rng.below(ZH_COMPANIES.len())];
                (format!("{company}{}分部", n), slug.to_string())
            } else {
                let (company, slug, _) = EN_COMPANIES[rng.below(EN_COMPANIES.len())];
                (format!("{company} #{n}"), slug.to_string())
            }
        } else if chinese {
            let surname = rng.pick(ZH_SURNAMES);
            let given = rng.pick(ZH_GIVEN);
            let name = format!("{surname}{given}");
            let romanised = kefu_domain::text::sort_key(&name)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(".");
            (name, romanised)
        } else {
            let first = rng.pick(EN_FIRST);
            let last = rng.pick(EN_LAST);
            (
                format!("{first} {last}"),
                format!("{}.{}", first.to_lowercase(), last.to_lowercase()),
            )
        };
        let digits = format!("{:010}", (n.wrapping_mul(7919) + offset) % 10_000_000_000);
        let phone = if chinese {
            format!(
                "+86 1{} {} {}",
                &digits[0..2],
                &digits[2..6],
                &digits[6..10]
            )
        } else {
            format!("+852 {}{} {}", &digits[0..1], &digits[1..4], &digits[4..10])
        };
        let domain = ["example.com", "example.cn", "example.net", "example.org"][(n % 4) as usize];
        record.push(name);
        record.push(
            if organisation {
                "organization"
            } else {
                "person"
            }
            .into(),
        );
        record.push(format!("{romanised}.{n}@{domain}"));
        record.push(if rng.chance(80) { phone } else { String::new() });
        record.push(if chinese && rng.chance(50) {
            format!("wx_{}_{n}", romanised.replace('.', ""))
        } else {
            String::new()
        });
        record.push(if rng.chance(10) { "key" } else { "ordinary" }.into());
        record.push(
            if rng.chance(3) {
                "internal"
            } else {
                "external"
            }
            .into(),
        );
        record.push(
            if organisation {
                "intermediate"
            } else {
                ["consumer", "consumer", "consumer", "intermediate", ""][rng.below(5)]
            }
            .into(),
        );
        record.push(lifecycles[rng.below(lifecycles.len())].as_str().into());
        record.push(rng.pick(LeadSource::ALL).as_str().into());
        record.push(if chinese { "zh-CN" } else { "en" }.into());
        let (needs, hobbies) = if chinese {
            (rng.pick(ZH_NEEDS), rng.pick(ZH_HOBBIES))
        } else {
            (rng.pick(EN_NEEDS), rng.pick(EN_HOBBIES))
        };
        record.push(needs.to_string());
        record.push(if rng.chance(50) {
            hobbies.to_string()
        } else {
            String::new()
        });
        record.push(if rng.chance(20) {
            if chinese {
                "展会上交换名片，对新品感兴趣。".into()
            } else {
                "Met at a trade fair; interested in the new range.".into()
            }
        } else {
            String::new()
        });
        out.write_record(&record).map_err(|e| cannot(&e))?;
    }
    let mut inner = out.into_inner().map_err(|e| cannot(&e.to_string()))?;
    inner.flush().map_err(|e| cannot(&e))?;
    Ok(())
}

/// Published FAQ entries in both languages, so the bot has something to answer from.
const DEMO_FAQ: &[(&str, &[&str], &str, &str)] = &[
    (
        "退款多久到账",
        &["退款什么时候到", "钱什么时候退回来"],
        "退款审核通过后 1-3 个工作日原路退回；银行卡到账以银行为准。",
        "售后",
    ),
    (
        "怎么申请退货",
        &["我要退货", "七天无理由退货怎么操作"],
        "在订单详情页点击“申请售后”，选择退货并填写原因；快递员会上门取件。",
        "售后",
    ),
    (
        "怎么开发票",
        &["能开电子发票吗", "发票抬头怎么填"],
        "在订单详情页点击“申请开票”，填写抬头和税号，电子发票会发到您的邮箱。",
        "发票",
    ),
    (
        "快递一般几天到",
        &["什么时候能送到", "发货后多久到"],
        "现货订单 24 小时内发货，一般 2-4 天送达，偏远地区 5-7 天。",
        "物流",
    ),
    (
        "可以修改收货地址吗",
        &["地址填错了怎么办"],
        "发货前可在订单详情页修改地址；已发货请联系快递改派。",
        "物流",
    ),
    (
        "忘记密码怎么办",
        &["登录不了", "怎么重置密码"],
        "在登录页点击“忘记密码”，用绑定的手机号接收验证码即可重置。",
        "账户",
    ),
    (
        "How long does a refund take?",
        &["When will I get my money back?"],
        "Refunds go back to the original payment method 1–3 working days after approval.",
        "after-sales",
    ),
    (
        "How do I return an item?",
        &["I want to send it back"],
        "Open the order, choose “After-sales”, then “Return”; a courier collects it.",
        "after-sales",
    ),
    (
        "Where is my parcel?",
        &["How long does delivery take?", "track my order"],
        "Orders in stock ship within 24 hours and usually arrive in 2–4 days; the tracking link is in the order page.",
        "delivery",
    ),
];

async fn load_knowledge_base(store: &Store, actor: &Actor) -> CliResult<usize> {
    for (question, similar, answer, category) in DEMO_FAQ {
        store
            .create_kb_entry(
                actor,
                kefu_store::kb::NewKbEntry {
                    kind: None,
                    question: question.to_string(),
                    similar: similar.iter().map(|s| s.to_string()).collect(),
                    answer: answer.to_string(),
                    category: Some(category.to_string()),
                    language: None,
                    status: Some(kefu_domain::kb::KbStatus::Published),
                },
            )
            .await?;
    }
    Ok(DEMO_FAQ.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut c = Rng::new(8);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..5).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert!(Rng::new(0).next_u64() != 0);
    }

    #[test]
    fn every_kind_has_scripts_in_both_languages() {
        for kind in CaseKind::ALL {
            assert!(!scripts(*kind, true).is_empty());
            assert!(!scripts(*kind, false).is_empty());
        }
    }
}
